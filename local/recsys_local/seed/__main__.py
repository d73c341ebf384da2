"""Seed the MySQL source: ``python -m recsys_local.seed --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recsys_local.process import StackError
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import load_sql_dump, seed
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack


def _progress(message: str) -> None:
    print(f"[seed] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    defaults = SeedSpec()
    parser = argparse.ArgumentParser(
        prog="python -m recsys_local.seed",
        description=(
            "Replace the classicmodels tables in the local stack's MySQL source with deterministic generated data "
            "(the generative story is in recsys_local/seed/generator.py), or load your own classicmodels SQL dump. "
            "The stack must be up (make up)."
        ),
    )
    parser.add_argument("--customers", type=int, default=defaults.customers, help="number of customers (%(default)s)")
    parser.add_argument("--products", type=int, default=defaults.products, help="number of products (%(default)s)")
    parser.add_argument(
        "--ratings", type=int, default=defaults.ratings, help="approximate number of ratings (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (%(default)s)")
    parser.add_argument(
        "--from-sql",
        type=Path,
        metavar="FILE",
        help="replace the source with this classicmodels dump (as published; loaded into a scratch database first, "
        "swapped in only when complete); a missing ratings table is derived from orders",
    )
    args = parser.parse_args(argv)
    cfg = Stack(stack_settings()).mariadb()
    try:
        if args.from_sql:
            counts = load_sql_dump(cfg, args.from_sql, args.seed, _progress)
            _progress(", ".join(f"{t} {n:,}" for t, n in counts.items()))
        else:
            seed(cfg, SeedSpec(args.customers, args.products, args.ratings, args.seed), _progress)
    except (StackError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
