"""`python -m benchmarks NAME [--quick] [--json] ...`: a benchmark without the vidsight CLI.

For machines that have the benchmark's own dependencies but not the service's (the GPU box
has no FastAPI extras). Settings come from the environment as usual.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from vidsight.settings import Settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print("usage: python -m benchmarks NAME [--quick] [--json] [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{argv[0]}")
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks {argv[0]}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    args.settings = Settings()
    for record in module.run(args):
        print(json.dumps(record, default=str) if args.json else record, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
