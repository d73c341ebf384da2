"""Generate user-activity events from the source catalog and put them on the Kinesis stream.

``python -m recsys.streaming.generator --help``. Uses the same Airflow connections as the DAGs (``mysql_source`` to
read customers and products, ``aws_default`` for Kinesis through the provider's hook), so source
``.local/stack.env`` first. One event about every 10 seconds by default, like the lab; ``--rate`` sends bursts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID, platform_names
from recsys_serving.events import PRODUCT_COLUMNS, browsed_item

#: The source's products as an event's browsed items carry them.
PRODUCTS_SQL = f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products"

NEW_CITIES = (("Lisboa", "Portugal"), ("Oslo", "Norway"), ("Austin", "USA"), ("Lyon", "France"), ("Kyoto", "Japan"))


def load_catalog(conn_id: str = MYSQL_CONN_ID) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The source's customers (an event's user fields) and products (each a browsed item, not in a cart)."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    hook = MySqlHook(mysql_conn_id=conn_id)
    customers = [
        {"customer_number": int(n), "city": city, "country": country, "credit_limit": None if c is None else float(c)}
        for n, city, country, c in hook.get_records("SELECT customerNumber, city, country, creditLimit FROM customers")
    ]
    products = [browsed_item(dict(zip(PRODUCT_COLUMNS, row, strict=True))) for row in hook.get_records(PRODUCTS_SQL)]
    if not customers or not products:
        raise SystemExit("the source has no customers or products: seed it first (make seed)")
    return customers, products


def make_event(rng: random.Random, customers: list[dict[str, Any]], products: list[dict[str, Any]]) -> dict[str, Any]:
    """A realistic session: a known customer (or, 1 in 10, a new one), 1-8 browsed products (:func:`load_catalog`'s),
    some in the cart."""
    if rng.random() < 0.1:
        city, country = rng.choice(NEW_CITIES)
        user = {
            "customer_number": rng.randint(900_000, 999_999),
            "city": city,
            "country": country,
            "credit_limit": float(rng.randrange(0, 150_000, 100)),
        }
    else:
        user = rng.choice(customers)
    browsed = rng.sample(products, k=min(len(products), rng.randint(1, 8)))
    history = [{**item, "in_shopping_cart": rng.random() < 0.25} for item in browsed]
    return {
        "session_id": str(uuid.UUID(int=rng.getrandbits(128))),
        **user,
        "event_time": datetime.now(UTC).isoformat(),
        "browse_history": history,
    }


def put_events(events: list[dict[str, Any]], stream: str, aws_conn_id: str = AWS_CONN_ID) -> int:
    """Put events with the provider's Kinesis hook (PutRecords, at most 500 per call); return how many failed."""
    from airflow.providers.amazon.aws.hooks.kinesis import KinesisHook

    client = KinesisHook(aws_conn_id=aws_conn_id).conn
    failed = 0
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        response = client.put_records(
            StreamName=stream,
            Records=[{"Data": json.dumps(e).encode(), "PartitionKey": e["session_id"]} for e in chunk],
        )
        failed += int(response.get("FailedRecordCount", 0))
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.streaming.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="events to send (%(default)s)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between events (%(default)s)")
    parser.add_argument("--rate", type=float, help="burst mode: events per second (overrides --interval)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible events")
    parser.add_argument("--stream", default=None, help="Kinesis stream (default: <prefix>-kinesis-data-stream)")
    args = parser.parse_args(argv)
    stream = args.stream or platform_names().kinesis_stream
    customers, products = load_catalog()
    rng = random.Random(args.seed)  # noqa: S311 - synthetic events, not security
    delay = 1.0 / args.rate if args.rate else args.interval
    sent = failed = 0
    started = time.monotonic()
    batch_size = max(1, int(args.rate)) if args.rate else 1
    while sent < args.count:
        batch = [make_event(rng, customers, products) for _ in range(min(batch_size, args.count - sent))]
        failed += put_events(batch, stream)
        sent += len(batch)
        print(
            f"[generator] {sent}/{args.count} events on {stream} ({failed} failed, {time.monotonic() - started:.0f} s)",
            flush=True,
        )
        if sent < args.count:
            time.sleep(delay * len(batch))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
