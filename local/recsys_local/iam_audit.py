"""Which principal called which AWS action: the local endpoint's record of every signed request, the ground truth for
the policies we ship (issue 34).

:class:`ActionLog` is the endpoint's first extension: it sees every request before any executor or moto answers it,
resolves its operation and IAM actions (:mod:`recsys_local.aws_operations`) and appends one JSON line to
``<state dir>/actions.jsonl``: the access key, the operation, its IAM actions, and who called (Terraform, an Airflow
hook, other boto3 code, from the user agent). ``python -m recsys_local.iam_audit [FILE]`` prints each caller's
actions with their counts.

It records; it does not refuse. Enforcement (the caller's policies evaluated against the real resource ARN) is the
next step of issue 34 and will sit in the same place.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from pathlib import Path

from werkzeug.wrappers import Response

from recsys_local.aws_operations import operation
from recsys_local.aws_server import AwsCall, Forward


def caller(user_agent: str) -> str:
    """Who sent a request, by its user agent: ``terraform``, ``airflow`` (the Amazon provider's hooks add
    ``Airflow/<version>``), or ``boto3`` (task code without a hook, the local executors)."""
    if "Terraform/" in user_agent or "terraform-provider-aws" in user_agent:
        return "terraform"
    if "Airflow/" in user_agent or "AmPP/" in user_agent:
        return "airflow"
    return "boto3"


class ActionLog:
    """Extension: records every signed request (see the module docstring); answers no call."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "actions.jsonl"
        self._lock = threading.Lock()

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        found = operation(call.environ, call.body)
        if found is not None:
            line = {
                "key": found.access_key,
                "operation": f"{found.service}:{found.name or '?'}",
                "actions": list(found.actions),
                "caller": caller(str(call.environ.get("HTTP_USER_AGENT") or "")),
                "method": call.method,
                "path": call.path,
            }
            with self._lock, open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        return None

    def restore(self, endpoint_url: str) -> None:
        return None

    def start(self, endpoint_url: str) -> None:
        return None

    def stop(self) -> None:
        return None


def summary(lines: list[dict[str, str]]) -> dict[str, Counter[str]]:
    """Each caller's actions with how often each was called."""
    by_caller: dict[str, Counter[str]] = {}
    for line in lines:
        for action in line["actions"]:
            by_caller.setdefault(line["caller"], Counter())[action] += 1
    return by_caller


def allowed_actions(documents: dict[str, dict]) -> dict[str, list[str]]:
    """Each action an Allow statement names -> the "<policy>/<Sid>" statements that name it."""
    found: dict[str, list[str]] = {}
    for policy, document in documents.items():
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        for index, statement in enumerate(statements):
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            for action in actions if isinstance(actions, list) else [actions]:
                found.setdefault(action, []).append(f"{policy}/{statement.get('Sid') or index}")
    return found


def report(
    principal: str,
    documents: dict[str, dict],
    lines: list[dict],
    callers: tuple[str, ...],
    reasons: dict[str, str],
    not_granted: dict[str, str],
) -> tuple[str, list[str]]:
    """A Markdown report of one principal: the actions it called (with counts) and the actions its policies allow
    that nothing called, each with why it stays (a statement whose Sid ends in ``Lifecycle`` holds update- and
    destroy-only actions; ``reasons`` the others). Returns the report and the allowed actions left without a reason."""
    allowed = allowed_actions(documents)
    called = Counter(a for line in lines if line["caller"] in callers for a in line["actions"])
    out = [f"## {principal}", "", f"Policies: {', '.join(sorted(documents))}.", ""]
    header = "| action called | authorizations (requests and what AWS checks on their behalf) | granted by |"
    out += [header, "|---|---|---|"]
    for action, count in sorted(called.items()):
        by = ", ".join(allowed.get(action, [])) or f"not granted: {not_granted.get(action, 'MISSING FROM THE POLICY')}"
        out.append(f"| `{action}` | {count:,} | {by} |")
    out += ["", "| allowed, not called | why it stays |", "|---|---|"]
    unexplained = []
    for action, statements in sorted(allowed.items()):
        if action in called:
            continue
        if all(s.endswith("Lifecycle") for s in statements):
            why = "an update or a destroy calls it (" + ", ".join(statements) + ")"
        elif action in reasons:
            why = reasons[action]
        else:
            why = "NO REASON: remove it or say why it stays"
            unexplained.append(action)
        out.append(f"| `{action}` | {why} |")
    return "\n".join(out) + "\n", unexplained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_local.iam_audit",
        description="Each caller's AWS actions, as the local endpoint authorized them (its actions.jsonl).",
    )
    parser.add_argument("file", nargs="?", type=Path, help="the log (default: the stack's aws/actions.jsonl)")
    args = parser.parse_args(argv)
    path = args.file
    if path is None:
        from recsys_local.settings import stack_settings

        path = stack_settings().home / "aws" / "actions.jsonl"
    if not path.is_file():
        print(f"error: {path}: no such file (the endpoint writes it once it answers a request)", file=sys.stderr)
        return 2
    lines = []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError as exc:
                print(f"error: {path}, line {number}: not JSON ({exc.msg})", file=sys.stderr)
                return 2
    for name, counts in sorted(summary(lines).items()):
        print(f"{name}: {len(counts)} actions, {sum(counts.values())} calls")
        for action, count in sorted(counts.items()):
            print(f"  {action:60} {count:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
