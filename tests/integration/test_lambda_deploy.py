"""Lambda deploys on the local endpoint: publish the package Terraform put on $LATEST, move `live`, roll back."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from recsys.streaming.deploy import DeployError, publish_and_promote, roll_back

pytestmark = pytest.mark.integration


def package(answer: str) -> tuple[bytes, dict[str, str]]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # a fixed timestamp: the same source gives the same bytes (and CodeSha256) whenever it is zipped
        entry = zipfile.ZipInfo("app.py", date_time=(1980, 1, 1, 0, 0, 0))
        archive.writestr(entry, f"def handler(event, context):\n    return {{'answer': {answer!r}}}\n")
    data = buffer.getvalue()
    return data, {"sha256": hashlib.sha256(data).hexdigest(), "key": f"lambda/fn-{answer}.zip"}


@pytest.fixture
def lam(in_process_aws):
    _, client = in_process_aws
    role = client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code, _ = package("one")
    client("lambda").create_function(
        FunctionName="fn", Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": code}
    )
    client("lambda").create_alias(FunctionName="fn", Name="live", FunctionVersion="$LATEST")
    return client("lambda")


def answer(lam) -> tuple[str, str]:
    response = lam.invoke(FunctionName="fn:live", Payload=b"{}")
    return json.loads(response["Payload"].read())["answer"], response["ExecutedVersion"]


def test_deploy_publishes_the_built_package_and_moves_live_then_rolls_back(lam):
    _, one = package("one")
    first = publish_and_promote(lam, "fn", one)
    assert (first["previous_version"], first["version"]) == ("$LATEST", "1")
    assert answer(lam) == ("one", "1")

    code, two = package("two")
    lam.update_function_code(FunctionName="fn", ZipFile=code)  # what Terraform's apply does to $LATEST
    assert answer(lam) == ("one", "1")  # traffic stays on the published version until the alias moves
    with pytest.raises(DeployError, match="not the package built by this run"):
        publish_and_promote(lam, "fn", one)  # $LATEST no longer runs that package: nothing moves
    assert answer(lam) == ("one", "1")

    second = publish_and_promote(lam, "fn", two)
    assert second["version"] != "1"
    assert answer(lam) == ("two", second["version"])

    back = roll_back(lam, "fn", "1")
    assert (back["previous_version"], back["version"]) == (second["version"], "1")
    assert answer(lam) == ("one", "1")
    with pytest.raises(DeployError, match="no published version '7'"):
        roll_back(lam, "fn", "7")
