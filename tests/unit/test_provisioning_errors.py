"""Which provisioning failures a DAG task retries and which fail it at once."""

from __future__ import annotations

import pytest

from recsys.provisioning import PermanentProvisioningError, ProvisioningError, provision_in_task
from recsys.provisioning.terraform import is_permanent

ALREADY = (
    "Error: creating Glue Connection (123456789012:de-c1w4-source): operation error Glue: CreateConnection, "
    "AlreadyExistsException: Connection already exists.\n\n  with module.etl.aws_glue_connection.source,\n"
)


@pytest.mark.parametrize(
    ("diagnostics", "permanent"),
    [
        ("Error: Invalid value for variable\n  on main.tf line 3:\n  var.buffering_interval_seconds", True),
        ('Error: Unsupported argument\n  An argument named "x" is not expected here.', True),
        ("api error ValidationException: 1 validation error detected", True),
        ("api error AccessDenied: User is not authorized to perform: glue:CreateJob", True),
        ("api error ThrottlingException: Rate exceeded", False),
        ("dial tcp 127.0.0.1:5055: connect: connection refused", False),
        ("Error acquiring the state lock", False),
        ("ValidationException ... RequestLimitExceeded", False),  # anything transient wins
        ("Error: waiting for RDS DB Instance create: timeout while waiting for state", False),
    ],
)
def test_permanent_diagnostics_are_told_from_transient_ones(diagnostics, permanent):
    assert is_permanent(diagnostics) is permanent


def test_a_permanent_failure_fails_the_task_at_once_and_a_transient_one_uses_its_retries(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    class Failing:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def provision(self, pipeline, **kwargs):
            raise self.error

    monkeypatch.setattr("recsys.provisioning.provisioner", lambda: Failing(PermanentProvisioningError(ALREADY)))
    with pytest.raises(AirflowFailException, match="AlreadyExistsException"):
        provision_in_task("etl")
    monkeypatch.setattr("recsys.provisioning.provisioner", lambda: Failing(ProvisioningError("connection refused")))
    with pytest.raises(ProvisioningError, match="connection refused") as retried:
        provision_in_task("etl")
    assert not isinstance(retried.value, AirflowFailException)
