"""`python -m recsys.bench` (`make bench`, `make bench ARGS=--quick`): run the benchmarks, print progress, write
``bench/results/latest.json`` and ``latest.md``. Exit status 0 even when a target is missed (the results say so):
a benchmark measures, it does not gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recsys.bench import Entry, say, write_results
from recsys.config import project_root

SUITES = ("dag_parse", "streaming", "vectors", "etl", "end_to_end")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.bench",
        description="Measure each speed claim against its reference in the same run (see bench/README.md).",
    )
    parser.add_argument("suites", nargs="*", default=list(SUITES), choices=SUITES, help="what to run (all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes in all")
    parser.add_argument("--vectors", type=int, help="item embeddings for the vector suite (1,000,000; quick 50,000)")
    parser.add_argument("--queries", type=int, help="top-10 queries per ef_search value (200; quick 100)")
    parser.add_argument("--ratings", type=int, help="ratings for the ETL suite (1,000,000; quick 100,000)")
    parser.add_argument("--customers", type=int, help="customers for the ETL suite (10,000; quick 1,000)")
    parser.add_argument("--out", default=str(project_root() / "bench" / "results"), help="results folder")
    args = parser.parse_args(argv)
    entries: list[Entry] = []
    for suite in args.suites:
        say(f"suite {suite} ({'quick' if args.quick else 'full'})")
        if suite == "dag_parse":
            from recsys.bench import dag_parse

            entries += dag_parse.run(args.quick)
        elif suite == "streaming":
            from recsys.bench import streaming

            entries += streaming.run(args.quick)
        elif suite == "etl":
            from recsys.bench import etl

            entries += etl.run(args.quick, customers=args.customers, ratings=args.ratings)
        elif suite == "end_to_end":
            from recsys.bench import end_to_end

            entries += end_to_end.run(args.quick)
        elif suite == "vectors":
            from recsys.bench import vectors

            entries += vectors.run(
                args.quick,
                n=args.vectors or (50_000 if args.quick else 1_000_000),
                queries=args.queries or (100 if args.quick else 200),
            )
    json_path, md_path = write_results(entries, Path(args.out), args.quick)
    print(md_path.read_text())
    say(f"results: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
