"""Command line of the local stack: ``python -m recsys_local {up,down,status,clean,env}``."""

from __future__ import annotations

import argparse
import sys
import warnings

from recsys_local.process import StackError
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

# platformdirs warns on machines without a login session (containers, CI); the stack does not use that directory
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def _progress(message: str) -> None:
    print(f"[local stack] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_local",
        description=(
            "Run the platform's local stack on 127.0.0.1: MariaDB (the MySQL source), PostgreSQL + pgvector "
            "(the vector DB) and a moto AWS endpoint with executors for Glue, Lambda and Firehose. Data lives "
            "under LOCAL_STACK_HOME (default .local/). Ports and names come from the environment; see .env.example."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every service (harmless when already running) and seed an empty source")
    up.add_argument("--no-seed", action="store_true", help="do not seed the source database when it is empty")
    up.add_argument("--no-airflow", action="store_true", help="skip migrating the Airflow metadata database")
    up.add_argument(
        "--no-restore",
        action="store_true",
        help="do not re-apply the Terraform roots DAGs applied before when the AWS endpoint (re)starts",
    )
    sub.add_parser(
        "airflow",
        help="start Airflow (api-server, scheduler, dag-processor, triggerer) against the running stack; "
        "UI on http://127.0.0.1:AIRFLOW_PORT (8080); DAGs start paused",
    )
    sub.add_parser("down", help="stop exactly the processes the stack started (Airflow first); data is kept")
    sub.add_parser("status", help="a table of services with their health; exit 1 when any is not healthy")
    sub.add_parser(
        "clean",
        help="stop the stack and delete LOCAL_STACK_HOME, only if the stack made it (it holds .recsys-stack-home)",
    )
    sub.add_parser("env", help="print the path of the shell-sourceable environment file")
    args = parser.parse_args(argv)

    try:
        stack = Stack(stack_settings())
        if args.command == "up":
            stack.up(_progress, migrate_airflow=not args.no_airflow, restore=not args.no_restore)
            if not args.no_seed:
                from recsys_local.seed.loader import seed_if_empty

                seed_if_empty(stack.mariadb(), progress=_progress)
            return 0
        if args.command == "airflow":
            from recsys_local import airflow_services

            not_running = [name for name, state, *_ in stack.status()[:3] if state != "healthy"]
            if not_running:
                raise StackError(f"the stack is not running ({', '.join(not_running)}): run make up first")
            airflow_services.start(stack, _progress)
            return 0
        if args.command == "down":
            stack.down(_progress)
            return 0
        if args.command == "status":
            rows = stack.status()
            widths = [max(len(r[i]) for r in [("service", "state", "endpoint", "detail"), *rows]) for i in range(4)]
            for row in [("service", "state", "endpoint", "detail"), *rows]:
                print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
            print(f"\nenvironment: {stack.settings.env_file}")
            return 0 if all(r[1] == "healthy" for r in rows) else 1
        if args.command == "clean":
            stack.clean(_progress)
            return 0
        print(stack.settings.env_file)
        return 0
    except (StackError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
