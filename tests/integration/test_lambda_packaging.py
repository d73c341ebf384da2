"""The Lambda packages: built from the hash-pinned lock, reproducibly; a wheel that does not match is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recsys.streaming.packaging import (
    FUNCTIONS,
    REQUIREMENTS,
    SERVING,
    PackagingError,
    build,
    dependencies_dir,
    locked_versions,
)
from recsys_local.lambda_runner import runtime_libraries

pytestmark = pytest.mark.integration


def test_the_same_inputs_give_the_same_zip(tmp_path):
    first = build("transformation", tmp_path / "a", cache=tmp_path / "cache-a")
    second = build("transformation", tmp_path / "b", cache=tmp_path / "cache-b")  # dependencies installed again
    assert first.sha256 == second.sha256
    assert first.key == second.key
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()


def test_the_dependencies_hold_nothing_of_the_building_machine(tmp_path):
    # pip writes console scripts with this interpreter's path in their shebang (and their hashes in RECORD): a zip
    # built in another checkout or virtualenv would differ (seen: a CI clone's rebuild changed both CodeSha256s)
    deps = dependencies_dir(tmp_path / "cache")
    here = sys.prefix.encode()
    leaking = [str(p.relative_to(deps)) for p in deps.rglob("*") if p.is_file() and here in p.read_bytes()]
    assert leaking == []
    assert not (deps / "bin").exists()


def tampered_lock(tmp_path: Path, replace: tuple[str, str]) -> Path:
    lock = tmp_path / "lambda-requirements.txt"
    lock.write_text(REQUIREMENTS.read_text().replace(*replace))
    return lock


def test_a_wheel_whose_hash_differs_from_the_lock_is_refused(tmp_path):
    pgvector = next(line for line in locked_versions() if line.startswith("pgvector=="))
    digest = pgvector.split("sha256:")[1]
    lock = tampered_lock(tmp_path, (digest, "0" * 64))
    with pytest.raises(PackagingError, match=r"(?i)hash"):
        dependencies_dir(tmp_path / "cache", lock)
    assert not list((tmp_path / "cache").glob("deps-*"))  # nothing half-installed is kept


def test_a_pin_without_a_hash_is_refused(tmp_path):
    pgvector = next(line for line in locked_versions() if line.startswith("pgvector=="))
    lock = tampered_lock(tmp_path, (pgvector, pgvector.split()[0]))
    with pytest.raises(PackagingError, match="needs --hash"):
        locked_versions(lock)


def test_a_worker_without_the_package_index_builds_from_the_wheelhouse_alone(tmp_path, monkeypatch):
    from recsys.streaming.packaging import WHEELHOUSE_ENV, main

    wheelhouse = tmp_path / "wheelhouse"
    assert main(["--wheelhouse", str(wheelhouse)]) == 0  # where the index is reachable (the image's build)
    assert len(list(wheelhouse.glob("*.whl"))) == len(locked_versions())
    # the worker: every index unreachable, only the wheelhouse
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv(WHEELHOUSE_ENV, str(wheelhouse))
    deps = dependencies_dir(tmp_path / "cache")
    assert (deps / "pgvector").is_dir()
    assert (deps / "numpy").is_dir()
    # a wheel missing from the wheelhouse is named, not fetched from an index
    next(wheelhouse.glob("pgvector-*.whl")).unlink()
    missing = r"(?s)from the wheelhouse .*No matching distribution found for pgvector=="
    with pytest.raises(PackagingError, match=missing):
        dependencies_dir(tmp_path / "cache-2")


def test_packages_built_ahead_of_time_deploy_by_their_sha256_and_a_changed_zip_is_refused(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    from recsys.streaming.packaging import build_all
    from recsys.streaming.pipeline import prebuilt_packages

    # the CA bundle as a build input in the repository's certs/ (here a copy): no download
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "eu-west-1-bundle.pem").write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    monkeypatch.setenv("RECSYS_CA_BUNDLE_DIR", str(certs))
    monkeypatch.delenv("VECTOR_DB_CA_BUNDLE", raising=False)
    monkeypatch.setenv("RDS_CA_BUNDLE_URL", "http://127.0.0.1:9/unreachable.pem")  # a download would fail
    built = build_all(tmp_path / "dist", "eu-west-1")  # `make package`
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="scripts")
        for package in built:  # what the operator uploads
            s3.upload_file(package.path, "scripts", package.key)
        digests = ",".join(p.sha256 for p in built)
        deployed = prebuilt_packages(s3, "scripts", digests)
        assert {f: (d["key"], d["sha256"], d["size"]) for f, d in deployed.items()} == {
            p.function: (p.key, p.sha256, p.size) for p in built
        }
        s3.put_object(Bucket="scripts", Key=built[0].key, Body=b"not the built zip")
        with pytest.raises(RuntimeError, match=rf"has sha256 [0-9a-f]{{64}}, not {built[0].sha256}"):
            prebuilt_packages(s3, "scripts", digests)
        s3.upload_file(built[0].path, "scripts", built[0].key)
        s3.delete_object(Bucket="scripts", Key=built[1].key)
        with pytest.raises(RuntimeError, match=r"no prebuilt package .*make package"):
            prebuilt_packages(s3, "scripts", f"{built[0].sha256},{built[1].sha256}")


#: Run with ``python -I -S`` (as the local Lambda worker runs a function): only the unzipped package, the runtime's
#: libraries and the standard library on the path.
IMPORT_FROM_ZIP = """
import importlib, json, pkgutil, sys
code_dir, runtime_dir, handler = sys.argv[1:4]
sys.path[:0] = [code_dir, runtime_dir]
module, _, attribute = handler.rpartition(".")
assert callable(getattr(importlib.import_module(module), attribute))
import recsys_serving
for info in pkgutil.iter_modules(recsys_serving.__path__):
    importlib.import_module(f"recsys_serving.{info.name}")
files = {name: getattr(m, "__file__", None) or "" for name, m in sys.modules.items()}
print(json.dumps(files))
"""


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("zips")
    return {function: build(function, out, cache=out / "cache") for function in FUNCTIONS}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_zip_alone_imports_its_handler_and_the_whole_serving_package(zips, tmp_path, function):
    import json
    import subprocess
    import zipfile

    code = tmp_path / "code"
    with zipfile.ZipFile(zips[function].path) as archive:
        names = archive.namelist()
        archive.extractall(code)
    packaged = {n for n in names if n.startswith("recsys_serving/")}
    tracked = subprocess.run(
        ["git", "ls-files", "include/recsys_serving"], cwd=SERVING.parent.parent, capture_output=True, text=True
    ).stdout.split()
    expected = {path.removeprefix("include/") for path in tracked}
    assert expected, "git lists the serving package"
    assert packaged == expected, "the zip holds the serving package's committed files, nothing else"
    assert not [n for n in names if n.startswith(("recsys/", "recsys_local/"))]
    runtime = runtime_libraries(tmp_path / "runtime")
    handler = f"{FUNCTIONS[function]}.handler"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_FROM_ZIP, str(code), str(runtime), handler],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    files = json.loads(result.stdout)
    assert FUNCTIONS[function] in files
    sources = (str(SERVING.parent), str(SERVING.parent.parent / "local"))  # include/ and local/
    project = [name for name, path in files.items() if path.startswith(sources)]
    assert project == [], f"imported from the repository instead of the zip: {project}"
