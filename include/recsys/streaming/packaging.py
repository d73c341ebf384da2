"""Build the two Lambdas' zip packages: the serving package (``include/recsys_serving``) whole, and only the
dependencies it needs.

Runtime ``python3.11`` on ``x86_64`` (the local Python, so the local stack runs the very same package).
Dependencies (numpy, psycopg with its binary libpq, pgvector) come as manylinux2014 wheels (the python3.11 runtime
runs on Amazon Linux 2) at the versions and sha256 hashes of ``lambda-requirements.txt`` (``--require-hashes``);
boto3 is the runtime's. The zip is
deterministic (sorted entries, fixed timestamps), so its sha256 names it and unchanged code never redeploys.
Limits checked: 50 MB zipped (direct upload), 250 MB unzipped.

Each zip also carries the CA bundle the functions verify the vector DB's certificate with (:data:`CA_ARCNAME`, the
functions' ``VECTOR_DB_SSLROOTCERT``; ``sslmode=verify-full``): the file ``VECTOR_DB_CA_BUNDLE`` names (the local
stack's CA), else Amazon RDS's bundle for the region, downloaded from :data:`RDS_CA_BUNDLE_URL` at build time (the
Airflow worker's network; cached for a week) and checked to hold PEM certificates.

Workers without a route to the internet (private subnets, no NAT) build from files only: ``RECSYS_LAMBDA_WHEELHOUSE``
names a folder of the lock's wheels (:func:`download_wheelhouse`, ``python -m recsys.streaming.packaging
--wheelhouse DIR``, run where the package index is reachable: the runtime image's build does it) and pip then reads no
index; ``VECTOR_DB_CA_BUNDLE`` names the RDS bundle on the workers instead of the download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import recsys_serving
from recsys.config import Settings, aws_region, project_root, settings

log = logging.getLogger(__name__)

RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"
PLATFORM = "manylinux2014_x86_64"
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
REQUIREMENTS = Path(recsys_serving.__file__).with_name("lambda-requirements.txt")
WHEELHOUSE_ENV = Settings.variable("lambda_wheelhouse")
CA_BUNDLE_ENV = Settings.variable("vector_db_ca_bundle")
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem"
CA_ARCNAME = "certs/vector-db-ca.pem"
#: Build inputs in the repository: a region's RDS bundle saved here (``<region>-bundle.pem``, public certificates)
#: is packaged without any download.
CA_BUNDLE_DIR = project_root() / "certs"
CA_CACHE_SECONDS = 7 * 24 * 3600
#: Libraries the Lambda Python runtime provides (boto3 and what it imports): not packaged, importable by the handlers.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

#: The serving package, zipped whole into each function's package (``recsys_serving/...`` in the zip): its files of
#: these kinds, so nothing else sitting in the folder (an editor's backup, bytecode) ships or changes a hash.
SERVING = Path(recsys_serving.__file__).parent
SERVING_FILES = ("*.py", "*.json", "lambda-requirements.txt")
#: Each function's handler module. Handler, runtime, memory and timeout are Terraform's
#: (terraform/modules/streaming_inference, `local.lambdas`); tests check each handler is in the package.
FUNCTIONS: dict[str, str] = {
    "transformation": "recsys_serving.transformation_handler",
    "model_inference": "recsys_serving.inference_api",
}


class PackagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Package:
    function: str
    path: str
    sha256: str
    size: int
    unzipped_size: int
    key: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def locked_versions(requirements: Path = REQUIREMENTS) -> list[str]:
    """The ``name==version --hash=sha256:...`` lines of the lock; every one pinned exactly and hashed."""
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    pins = [line for line in lines if line]
    unpinned = [line for line in pins if "==" not in line.split()[0]]
    if unpinned:
        raise PackagingError(f"{requirements.name}: pin exact versions ({', '.join(unpinned)})")
    unhashed = [line.split()[0] for line in pins if "--hash=sha256:" not in line]
    if unhashed:
        raise PackagingError(f"{requirements.name}: every pin needs --hash=sha256:... ({', '.join(unhashed)})")
    return pins


#: Part of the cache folder's name: bumped when what goes into the folder changes (2: no console scripts), so a
#: folder an older version filled is not reused.
CACHE_LAYOUT = "2"


def dependencies_dir(cache: Path, requirements: Path = REQUIREMENTS) -> Path:
    """The Lambda platform's wheels, checked against the lock's hashes, installed into a cached folder."""
    pins = locked_versions(requirements)
    digest = hashlib.sha256("\n".join([*pins, PLATFORM, RUNTIME, CACHE_LAYOUT]).encode()).hexdigest()[:16]
    target = cache / f"deps-{digest}"
    if (target / ".complete").exists():
        return target
    # pip installs into a folder of this process only, renamed into place when complete: a build killed mid-install
    # (its pip may live on) and a concurrent or retried build never write into the same folder
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("*.installing-*"):  # left by a killed build an hour ago or more
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.installing-", dir=cache))
    try:
        _install(pins, requirements, staging)
        make_machine_independent(staging)
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another build completed first (or left an incomplete folder): use or replace it
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def make_machine_independent(deps: Path) -> None:
    """Drop what pip writes that depends on the building machine, so the same lock gives the same zip anywhere:
    bytecode caches, and console scripts (``bin/``: their shebang is this interpreter's path, and a Lambda runs none
    of them) with their lines in the ``RECORD`` files."""
    for junk in deps.rglob("__pycache__"):
        shutil.rmtree(junk, ignore_errors=True)
    shutil.rmtree(deps / "bin", ignore_errors=True)
    for record in deps.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(("../../bin/", "bin/"))]
        if kept != lines:
            record.write_text("".join(kept))


#: pip's options selecting the Lambda platform's wheels (``install`` and ``download`` alike).
PLATFORM_OPTIONS = (
    "--require-hashes",
    "--platform",
    PLATFORM,
    "--implementation",
    "cp",
    "--python-version",
    "3.11",
    "--only-binary=:all:",
    "--no-deps",
)


def _wheel_source(env: Mapping[str, str] | None = None) -> list[str]:
    """pip's index options: none (pip's configured index), or only the wheelhouse ``RECSYS_LAMBDA_WHEELHOUSE`` names."""
    wheelhouse = settings(env).lambda_wheelhouse
    if wheelhouse is None:
        return []
    if not wheelhouse.is_dir():
        raise PackagingError(f"{WHEELHOUSE_ENV}={wheelhouse} is not a folder (fill one with --wheelhouse)")
    return ["--no-index", "--find-links", str(wheelhouse.resolve())]


def _install(pins: list[str], requirements: Path, target: Path) -> None:
    source = _wheel_source()
    where = f"the wheelhouse {source[-1]}" if source else "the package index"
    log.info(
        "installing %s for %s/%s from %s into %s",
        ", ".join(p.split()[0] for p in pins),
        RUNTIME,
        PLATFORM,
        where,
        target,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            *source,
            "--target",
            str(target),
            *PLATFORM_OPTIONS,
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PackagingError(f"pip could not install the Lambda dependencies from {where}:\n{result.stderr[-3000:]}")


def download_wheelhouse(dest: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """Download the lock's wheels for the Lambda platform into ``dest`` (hashes checked); returns their file names.
    Point ``RECSYS_LAMBDA_WHEELHOUSE`` at it on workers that cannot reach the package index."""
    dest.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), *PLATFORM_OPTIONS,
         "-r", str(requirements)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise PackagingError(f"pip could not download the Lambda dependencies:\n{result.stderr[-3000:]}")
    return sorted(p.name for p in dest.glob("*.whl"))


def serving_files() -> list[Path]:
    """The files of the serving package that go into a zip (:data:`SERVING_FILES`), sorted."""
    found = {p for pattern in SERVING_FILES for p in SERVING.rglob(pattern) if p.is_file()}
    return sorted(p for p in found if "__pycache__" not in p.relative_to(SERVING).parts)


def _add_tree(archive: zipfile.ZipFile, root: Path, prefix: str = "") -> int:
    total = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".complete"):
        arcname = prefix + str(path.relative_to(root))
        total += _add_file(archive, path, arcname)
    return total


def _add_file(archive: zipfile.ZipFile, path: Path, arcname: str) -> int:
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
    data = path.read_bytes()
    archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return len(data)


def check_ca_bundle(data: bytes, where: str) -> int:
    """The number of certificates in a PEM bundle; raises :class:`PackagingError` naming ``where`` otherwise."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PackagingError(f"{where} is not a PEM CA bundle: {exc}") from None
    return len(certificates)


def ca_bundle(cache: Path, region: str, env: Mapping[str, str] | None = None) -> Path:
    """The CA bundle for the vector DB's certificate (see the module doc)."""
    config = settings(env)
    if config.vector_db_ca_bundle is not None:
        path = config.vector_db_ca_bundle
        if not path.is_file():
            raise PackagingError(f"{CA_BUNDLE_ENV}={path} does not exist")
        check_ca_bundle(path.read_bytes(), f"{CA_BUNDLE_ENV}={path}")
        return path
    shipped = (config.ca_bundle_dir or CA_BUNDLE_DIR) / f"{region}-bundle.pem"
    if shipped.is_file():  # committed with the repository: no download on the worker
        check_ca_bundle(shipped.read_bytes(), str(shipped))
        return shipped
    url = config.rds_ca_bundle_url or RDS_CA_BUNDLE_URL.format(region=region)
    target = cache / f"rds-ca-{region}.pem"
    if target.is_file() and time.time() - target.stat().st_mtime < CA_CACHE_SECONDS:
        return target
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - an https URL from configuration
            data = response.read()
    except OSError as exc:
        raise PackagingError(
            f"could not download the RDS CA bundle from {url} ({exc}); download it yourself and set {CA_BUNDLE_ENV} "
            "to the file"
        ) from None
    count = check_ca_bundle(data, url)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    log.info("RDS CA bundle for %s: %d certificates from %s", region, count, url)
    return target


def zip_name(function: str, digest: str) -> str:
    """A package's file name, from its sha256; its key in the scripts bucket is ``lambda/<name>``."""
    return f"{function}-{digest[:16]}.zip"


def build(function: str, out_dir: Path, cache: Path | None = None, ca_file: Path | None = None) -> Package:
    """Build one function's zip under ``out_dir`` (with ``ca_file`` as :data:`CA_ARCNAME`); raises
    :class:`PackagingError` over Lambda's limits."""
    if function not in FUNCTIONS:
        raise PackagingError(f"no Lambda function {function!r}: expected one of {', '.join(FUNCTIONS)}")
    cache = cache or out_dir / "cache"
    deps = dependencies_dir(cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{function}.zip.tmp"
    unzipped = 0
    with zipfile.ZipFile(tmp, "w") as archive:
        for path in serving_files():
            unzipped += _add_file(archive, path, f"{SERVING.name}/{path.relative_to(SERVING).as_posix()}")
        unzipped += _add_tree(archive, deps)
        if ca_file is not None:
            unzipped += _add_file(archive, ca_file, CA_ARCNAME)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = out_dir / zip_name(function, digest)
    tmp.replace(path)
    size = path.stat().st_size
    if size > MAX_ZIPPED or unzipped > MAX_UNZIPPED:
        raise PackagingError(
            f"{function}: {size / 1e6:.1f} MB zipped / {unzipped / 1e6:.1f} MB unzipped exceeds Lambda's "
            f"{MAX_ZIPPED / 1e6:.0f} / {MAX_UNZIPPED / 1e6:.0f} MB"
        )
    log.info("%s: %s, %.1f MB zipped, %.1f MB unzipped", function, path.name, size / 1e6, unzipped / 1e6)
    return Package(function, str(path), digest, size, unzipped, f"lambda/{path.name}")


def build_all(out_dir: Path, region: str, cache: Path | None = None) -> list[Package]:
    """Both functions' zips, with the vector DB's CA bundle (:func:`ca_bundle`), under ``out_dir``."""
    cache = cache or out_dir / "cache"
    ca_file = ca_bundle(cache, region)
    return [build(function, out_dir, cache, ca_file) for function in FUNCTIONS]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m recsys.streaming.packaging",
        description="Build the Lambda packages ahead of time (--build), or download their dependencies' wheels "
        f"(--wheelhouse), for Airflow workers without the internet: upload the zips to the scripts bucket's lambda/ "
        f"and set {Settings.variable('prebuilt_packages')} on the workers to their sha256s (or give them to a run's "
        f"prebuilt_packages Param), or set {WHEELHOUSE_ENV} to the wheel folder on the workers.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--build", type=Path, metavar="DIR", help="build both zips into DIR")
    action.add_argument("--wheelhouse", type=Path, metavar="DIR", help="download the lock's wheels into DIR")
    parser.add_argument("--region", default=aws_region(), help="RDS CA region")
    args = parser.parse_args(argv)
    try:
        if args.wheelhouse:
            names = download_wheelhouse(args.wheelhouse)
            print(f"{len(names)} wheels in {args.wheelhouse}: {', '.join(names)}")
            return 0
        packages = build_all(args.build, args.region)
    except PackagingError as exc:
        print(exc, file=sys.stderr)
        return 1
    for package in packages:
        print(f"{package.function}: {package.path} sha256 {package.sha256} -> s3://<scripts bucket>/{package.key}")
    print(f"{Settings.variable('prebuilt_packages')}=" + ",".join(p.sha256 for p in packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
