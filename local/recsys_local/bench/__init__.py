"""`make bench`: every speed claim measured against its reference in the same run, on the same machine.

These machines are shared and noisy, so a figure counts only as a ratio to a reference measured in the same run
(never as a timed test). Each :class:`Entry` holds the value, the reference, their ratio, the target and pass/fail;
:func:`write_results` writes ``bench/results/latest.json`` and ``latest.md`` (docs/benchmarks.md's figures are
copied from there, with the machine and date).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Entry:
    """One measured claim. ``better`` says which way is good for ``ratio`` = value / reference: "lower" (a time
    against a reference time) or "higher"; ``target`` is the ratio (or, with ``absolute``, the value) to meet."""

    name: str
    value: float
    unit: str
    reference_name: str
    reference: float | None
    target: float
    better: str = "lower"
    absolute: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0):
            return None
        return self.value / float(self.reference)

    @property
    def passed(self) -> bool:
        measured = self.value if self.absolute else self.ratio
        if measured is None:
            return False
        return measured <= self.target if self.better == "lower" else measured >= self.target

    def target_text(self) -> str:
        what = self.unit if self.absolute else "x the reference"
        return f"{'<=' if self.better == 'lower' else '>='} {self.target:g} {what}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed, "target_text": self.target_text()}


def scratch_database(stack: Any, name: str) -> dict[str, Any]:
    """A database of the stack's vector DB for a benchmark (created once, with pgvector); its connection kwargs."""
    from psycopg import sql

    from recsys_local.postgres import _superuser_conn

    cfg = stack.vectordb()
    with _superuser_conn(cfg) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(cfg.user)))
    with _superuser_conn(cfg, name) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return {**cfg.conninfo(), "dbname": name}


def drop_scratch_database(stack: Any, name: str) -> None:
    """Remove a benchmark's scratch database (:func:`scratch_database`) from the stack's vector DB."""
    from psycopg import sql

    from recsys_local.postgres import _superuser_conn

    with _superuser_conn(stack.vectordb()) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def remove_scratch_bucket(s3: Any, bucket: str) -> None:
    """A benchmark's scratch bucket and everything in it (1,000 keys per request); nothing when it is gone."""
    import contextlib

    with contextlib.suppress(s3.exceptions.NoSuchBucket):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)


def generated_frame(spec: Any) -> tuple[Any, dict[str, Any]]:
    """Generated source data (:mod:`recsys_local.seed`) as training data in contract columns; (the frame, the
    tables)."""
    import pandas as pd

    from recsys.config import TRAINING_COLUMNS
    from recsys_local.seed.generator import generate

    tables: dict[str, list[pd.DataFrame]] = {}
    for table, frame in generate(spec):
        tables.setdefault(table, []).append(frame)
    data = {t: pd.concat(v, ignore_index=True) for t, v in tables.items()}
    frame = data["ratings"].merge(data["customers"], on="customerNumber").merge(data["products"], on="productCode")
    return frame[list(TRAINING_COLUMNS)], data


def train_on_generated(spec: Any, epochs: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """The recommender trained on generated source data; (the result, the tables)."""
    from recsys.model.train import TrainConfig, train

    frame, data = generated_frame(spec)
    return train(frame, TrainConfig(epochs=epochs, seed=seed)), data


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def markdown(suites: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Each suite's figures come from one run on one machine (ratios to a reference measured in that run).",
    ]
    for name, run in suites.items():
        info = run["machine"]
        lines += [
            "",
            f"## {name} ({'quick' if run['quick'] else 'full'} run)",
            "",
            f"{info['date']} on {info['host']}: {info['cpus']} CPUs, Python {info['python']}, {info['platform']}.",
            "",
            "| claim | value | reference | ratio | target | result |",
            "|---|---|---|---|---|---|",
        ]
        for e in run["entries"]:
            value = f"{_fmt(e['value'])} {e['unit']}".strip()
            reference = (
                f"{_fmt(e['reference'])} {e['unit']}".strip() + f" ({e['reference_name']})"
                if e["reference"] is not None
                else "-"
            )
            lines.append(
                f"| {e['name']} | {value} | {reference} | {_fmt(e['ratio'])} | {e['target_text']} | "
                f"{'pass' if e['passed'] else 'MISS'} |"
            )
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, list[Entry]], out_dir: Path, quick: bool) -> tuple[Path, Path]:
    """Write each suite's entries (with this run's machine and date) into ``latest.json`` / ``latest.md``; suites
    not run this time keep their last results (each suite says when and where it was measured)."""
    info = machine()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    suites: dict[str, dict[str, Any]] = {}
    if json_path.exists():
        try:
            suites = dict(json.loads(json_path.read_text()).get("suites", {}))
        except (ValueError, AttributeError):
            suites = {}  # an older or damaged file: this run's suites replace it
    for name, entries in results.items():
        suites[name] = {"machine": info, "quick": quick, "entries": [e.to_dict() for e in entries]}
    json_path.write_text(json.dumps({"suites": suites}, indent=2) + "\n")
    md_path.write_text(markdown(suites))
    return json_path, md_path
