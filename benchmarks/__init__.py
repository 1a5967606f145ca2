"""Benchmarks run by `vidsight bench NAME`. Each module NAME.py defines

    add_arguments(parser)            # its own options besides --quick and --json
    run(args) -> Iterator[dict]      # progress records, then the summary as the last record

and compares against its baseline in the same run.
"""
