"""`vidsight bench NAME [--quick] [--json]`: run one benchmark from benchmarks/."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from typing import Any

import benchmarks
from vidsight.settings import Settings

_NOT_BENCHMARKS = {"harness"}


def available() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if not m.name.startswith("_") and m.name not in _NOT_BENCHMARKS
    )


def add_parser(subparsers: Any) -> None:
    names = available()
    parser = subparsers.add_parser(
        "bench", help="run a benchmark", description=f"Benchmarks: {', '.join(names)}"
    )
    bench_parsers = parser.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        sub = bench_parsers.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        sub.add_argument("--quick", action="store_true", help="small sizes for CI / a laptop")
        sub.add_argument(
            "--json", action="store_true", help="one JSON object per line; the last is the summary"
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=_runner(name))


def _runner(name: str) -> Any:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        module = importlib.import_module(f"benchmarks.{name}")
        args.settings = settings
        for record in module.run(args):
            if args.json:
                print(json.dumps(record, default=str), flush=True)
            else:
                print("  ".join(f"{k}={v}" for k, v in record.items()), flush=True)
        return 0

    return handler
