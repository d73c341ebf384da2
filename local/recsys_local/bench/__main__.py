"""`python -m recsys_local.bench` (`make bench`, `make bench ARGS=--quick`): run the benchmarks, print progress, write
``bench/results/latest.json`` and ``latest.md`` after each suite (a suite not run keeps its last results). Exit
status 0 even when a target is missed (the results say so: a benchmark measures, it does not gate); 1 when a suite
could not run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recsys.config import project_root
from recsys_local.bench import Entry, say, write_results
from recsys_local.bench.end_to_end import NotDeployed

SUITES = ("dag_parse", "streaming", "vectors", "etl", "end_to_end", "served", "iam", "ranking")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_local.bench",
        description="Measure each speed claim against its reference in the same run (see docs/benchmarks.md).",
    )
    # checked below: Python 3.11's argparse checks an empty or default list against `choices` and refuses it
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"what to run (all): {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, about 5 minutes in all")
    parser.add_argument("--vectors", type=int, help="item embeddings for the vector suite (1,000,000; quick 50,000)")
    parser.add_argument("--queries", type=int, help="top-10 queries per ivfflat.probes value (200; quick 100)")
    parser.add_argument("--ratings", type=int, help="ratings for the ETL suite (1,000,000; quick 100,000)")
    parser.add_argument("--customers", type=int, help="customers for the ETL suite (10,000; quick 1,000)")
    parser.add_argument(
        "--public-dump",
        type=Path,
        metavar="FILE",
        help="the public classicmodels dump (mysqlsampledatabase.sql) for the ranking suite's second dataset",
    )
    parser.add_argument("--out", default=str(project_root() / "bench" / "results"), help="results folder")
    args = parser.parse_args(argv)
    unknown = [suite for suite in args.suites if suite not in SUITES]
    if unknown:
        parser.error(f"invalid choice: {unknown[0]!r} (choose from {', '.join(SUITES)})")
    args.suites = args.suites or list(SUITES)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed: list[str] = []
    json_path = md_path = None
    for suite in args.suites:
        say(f"suite {suite} ({'quick' if args.quick else 'full'})")
        try:
            entries = run_suite(suite, args)
        except NotDeployed as reason:
            say(f"suite {suite} skipped: {reason} (its last results are kept)")
            continue
        except Exception as error:  # one suite failing must not lose the others' results
            say(f"suite {suite} FAILED: {type(error).__name__}: {error}")
            failed.append(suite)
            continue
        json_path, md_path = write_results({suite: entries}, Path(args.out), args.quick)
        say(f"suite {suite}: {sum(e.passed for e in entries)} of {len(entries)} targets met; written to {json_path}")
    if md_path is not None:
        print(md_path.read_text())
        say(f"results: {json_path} and {md_path}")
    if failed:
        say(f"failed suites (no results written for them): {', '.join(failed)}")
        return 1
    return 0


def run_suite(suite: str, args: argparse.Namespace) -> list[Entry]:
    if suite == "dag_parse":
        from recsys_local.bench import dag_parse

        return dag_parse.run(args.quick)
    if suite == "streaming":
        from recsys_local.bench import streaming

        return streaming.run(args.quick)
    if suite == "etl":
        from recsys_local.bench import etl

        return etl.run(args.quick, customers=args.customers, ratings=args.ratings)
    if suite == "end_to_end":
        from recsys_local.bench import end_to_end

        return end_to_end.run(args.quick)
    if suite == "iam":
        from recsys_local.bench import iam

        return iam.run(args.quick)
    if suite == "ranking":
        from recsys_local.bench import ranking

        return ranking.run(args.quick, args.public_dump)
    if suite == "served":
        from recsys_local.bench import served

        return served.run(args.quick)
    from recsys_local.bench import vectors

    return vectors.run(
        args.quick,
        n=args.vectors or (50_000 if args.quick else 1_000_000),
        queries=args.queries or (100 if args.quick else 200),
    )


if __name__ == "__main__":
    sys.exit(main())
