"""What `make up` decides when it re-applies the roots on a restarted endpoint (recsys_local.restore)."""

from __future__ import annotations

from recsys.provisioning import ProvisioningError
from recsys_local import restore


def test_the_lambdas_keep_their_version_while_the_vector_db_holds_it_else_get_the_live_one():
    loaded = ["v3", "v2"]  # newest first: v3 is live
    assert restore.serving_after_restore("v2", loaded) == "v2"  # an older version still loaded stays pinned
    assert restore.serving_after_restore("v1", loaded) == "v3"  # pruned since the deploy: the live one
    assert restore.serving_after_restore("v1", []) == "v1"  # nothing loaded: as remembered, the DAGs say what to run


def test_the_restore_reports_terraforms_error_line_not_the_command():
    error = ProvisioningError(
        "terraform apply failed for etl:\n\n│ Error: creating KMS Alias (alias/x): operation error KMS: CreateAlias\n"
    )
    assert restore._first_line(error) == "Error: creating KMS Alias (alias/x): operation error KMS: CreateAlias"
    assert restore._first_line(ProvisioningError("no Terraform root at /x")) == "no Terraform root at /x"
