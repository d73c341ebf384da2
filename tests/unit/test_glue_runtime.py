"""The local Glue executor runs the job on Glue 5.1's runtime, and the script uses nothing Glue 5.1 lacks."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.config import GLUE_RUNTIME, GLUE_VERSION, project_root

SCRIPT = project_root() / "include" / "recsys" / "etl" / "glue_job.py"
#: What a Glue 5.1 job may import besides the standard library.
GLUE_PROVIDED = {"pyspark", "awsglue", "boto3", "botocore"}


def test_local_python_and_spark_are_glue_5_1s():
    import pyspark

    assert GLUE_VERSION == "5.1"
    assert pyspark.__version__ == GLUE_RUNTIME["spark"]
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == GLUE_RUNTIME["python"]


def test_local_java_is_glue_5_1s():
    result = subprocess.run(["java", "-version"], capture_output=True, text=True, check=True)
    major = re.search(r'version "(\d+)', result.stderr)
    assert major is not None, result.stderr
    assert major.group(1) == GLUE_RUNTIME["java"]


def test_the_script_needs_no_newer_python_than_glue_s():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "vermin"),
            "--no-tips",
            "--violations",
            f"-t={GLUE_RUNTIME['python']}-",
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"glue_job.py needs a newer Python than Glue's:\n{result.stdout}{result.stderr}"


def test_the_script_imports_only_what_glue_provides():
    tree = ast.parse(SCRIPT.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    foreign = imported - set(sys.stdlib_module_names) - GLUE_PROVIDED - {"__future__"}
    assert not foreign, f"glue_job.py imports modules a Glue 5.1 job does not have: {sorted(foreign)}"


@pytest.mark.parametrize(
    ("in_glue", "ca", "expected"),
    [
        (True, "", {"sslMode": "REQUIRED"}),
        (  # the trust store --extra-files put in the working directory: java.net.URL has no s3: handler
            True,
            "file:truststore.jks",
            {
                "sslMode": "VERIFY_CA",
                "trustCertificateKeyStoreUrl": "file:truststore.jks",
                "trustCertificateKeyStoreType": "JKS",
            },
        ),
        (
            True,
            "file:rds-ca.p12",
            {
                "sslMode": "VERIFY_CA",
                "trustCertificateKeyStoreUrl": "file:rds-ca.p12",
                "trustCertificateKeyStoreType": "PKCS12",
            },
        ),
        (False, "/x/ca.pem", {"useSsl": "true", "serverSslCert": "/x/ca.pem"}),
        (False, "", {"useSsl": "true", "trustServerCertificate": "true"}),
    ],
)
def test_the_source_read_always_asks_the_driver_for_tls(in_glue, ca, expected):
    """MySQL Connector/J in Glue, MariaDB Connector/J locally: TLS in every case, verified when a CA is given."""
    from recsys.etl.glue_job import Context

    ctx = Context.__new__(Context)  # no Spark session: only the driver properties are under test
    ctx.in_glue, ctx.args = in_glue, {"source_ssl_ca": ca}
    assert ctx.jdbc_ssl_options() == expected
