"""Each Terraform root is applied by exactly one DAG (recsys.provisioning.OWNER_DAGS); the others only read it."""

from __future__ import annotations

import re

from recsys.config import project_root
from recsys.provisioning import OWNER_DAGS, PIPELINES

CALL = re.compile(r'provision_in_task\(\s*"(?P<root>\w+)"(?P<args>[^)]*)\)', re.S)


def test_each_root_has_exactly_one_applying_dag():
    appliers: dict[str, list[str]] = {root: [] for root in PIPELINES}
    for path in sorted((project_root() / "dags").glob("*.py")):
        for call in CALL.finditer(path.read_text()):
            if "apply=False" not in call.group("args"):
                appliers[call.group("root")].append(path.stem)
    assert appliers == {root: [OWNER_DAGS[root]] for root in PIPELINES}
