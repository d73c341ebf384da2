"""Keep every resource the local AWS endpoint was given across a restart: graceful (``make down``) or not (a kill).

moto holds its models in memory. S3 objects and Kinesis records are written through as they change
(:mod:`recsys_local.s3_persistence`, :mod:`recsys_local.kinesis_persistence`); the rest (IAM roles, KMS keys,
Glue jobs, secrets, the RDS instance, Lambda functions, Firehose streams, security groups, log groups, each bucket's
configuration: lifecycle, policy, encryption, versioning, tags; each Kinesis stream's encryption and tags) is pickled
from moto's backends into one snapshot, which the next start loads before the port answers:

* a **checkpoint** once a change to them has been answered and no other came for :data:`QUIET_SECONDS` (a Terraform
  apply's burst is one checkpoint), at the latest :data:`MAX_DELAY_SECONDS` after the first unsaved change. Data-plane
  calls (object and record writes, log events, invocations, job runs) take none. A checkpoint holds no Glue job runs:
  the Glue runner owns what happened to a run, and after a kill moto alone would call a run it never finished
  SUCCEEDED. The endpoint forks while it holds the request lock (copy-on-write: the state of that instant) and the
  child pickles and writes it, so calls wait for the fork, not for the pickle (the child dies with the endpoint);
* a **final** snapshot at a graceful stop, once no request is in flight, job runs included (the runner saves their
  outcomes beside it).

After a graceful stop ``make up`` has nothing to re-apply. After a kill the endpoint comes back with its last
checkpoint, which may miss the last second of changes: ``make up`` re-applies each applied root, which plans no change
when nothing was missed (:mod:`recsys_local.restore`). Before checkpoints, a kill kept S3 and Kinesis only and
that re-apply re-created everything (minutes: the provider's waits on lifecycle configurations and the RDS instance).
A snapshot taken by another moto version is not loaded (the restore re-applies); a service moto's objects cannot be
pickled for is left out and named in the log (``make up`` then re-applies). It is written with mode 0600: it holds
what the endpoint holds, secret values included, like ``.local/aws`` as a whole.

    <state_dir>/moto/snapshot.pickle  {"moto": version, "taken": iso time, "backends": {"module:name": BackendDict},
                                       "buckets": {(account, bucket): {attribute: value}}, "tags": {...},
                                       "streams": {(account, region, stream): {attribute: value}}, "left_out": [...]}
    <state_dir>/moto/snapshot.final   present while the snapshot is a graceful stop's (removed when loaded)
    <state_dir>/moto/restored.json    {"pid", "taken", "left_out", "final"}: written when a start loaded a snapshot
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import pickle
import signal
import stat
import threading
import time
import weakref
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys_local.aws_server import MOTO_LOCK, AwsCall, Forward

log = logging.getLogger("recsys_local.snapshot")

#: Services persisted by their own write-through journals (a snapshot would restore an older copy over them).
WRITTEN_THROUGH = frozenset({"s3", "kinesis"})
#: A bucket's objects stay with the S3 mirror; everything else about it is configuration.
BUCKET_CONTENT = frozenset({"keys", "multiparts"})
#: A checkpoint waits for this many seconds without a change...
QUIET_SECONDS = 1.0
#: ...but no longer than this after the first change it has not saved.
MAX_DELAY_SECONDS = 15.0
#: Operations that read (by their name's start), and the data-plane writes that take no checkpoint.
READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Head", "Search", "Lookup", "Query", "Scan", "Simulate")
DATA_PLANE = frozenset(
    {
        "PutRecord",
        "PutRecords",
        "PutRecordBatch",
        "PutLogEvents",
        "CreateLogStream",
        "PutMetricData",
        "StartJobRun",
        "BatchStopJobRun",
        "Invoke",
        "InvokeAsync",
        "AssumeRole",
        "AssumeRoleWithWebIdentity",
    }
)


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def _weak_values(items: dict[Any, Any]) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


def _defaultdict(factory: type, items: dict[Any, Any]) -> Any:
    from collections import defaultdict

    return defaultdict(factory, items)


def _new_lock(reentrant: bool) -> Any:
    return threading.RLock() if reentrant else threading.Lock()


class _Pickler(pickle.Pickler):
    """Pickles what moto's models hold that pickle cannot: KMS/RDS private keys (as PEM), the Lambda backend's
    ``WeakValueDictionary`` (as its items) and ``defaultdict(lambda: {})``, and locks (as new locks)."""

    LOCK = type(threading.Lock())
    RLOCK = type(threading.RLock())

    def __init__(self, *args: Any, without_job_runs: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from moto.glue.models import FakeJob

        #: a checkpoint's Glue jobs are pickled without their runs (the live ones keep theirs)
        self.job_type = FakeJob if without_job_runs else None
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        self.key_types = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
        self.pem = (Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    def reducer_override(self, obj: Any) -> Any:
        if self.job_type is not None and type(obj) is self.job_type:
            return _with_state, (type(obj), {**vars(obj), "job_runs": []})
        if isinstance(obj, self.key_types):
            return _load_private_key, (obj.private_bytes(*self.pem),)
        if isinstance(obj, weakref.WeakValueDictionary):
            return _weak_values, (dict(obj.items()),)
        if isinstance(obj, defaultdict) and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            empty = obj.default_factory()  # moto's `defaultdict(lambda: {})`: the same as defaultdict(dict)
            if type(empty) in (dict, list, set) and not empty:
                return _defaultdict, (type(empty), dict(obj))
        if isinstance(obj, self.LOCK):
            return _new_lock, (False,)
        if isinstance(obj, self.RLOCK):
            return _new_lock, (True,)
        return NotImplemented


def _with_state(cls: type, state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _dumps(value: Any, without_job_runs: bool = False) -> bytes:
    import io

    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL, without_job_runs=without_job_runs).dump(value)
    return buffer.getvalue()


def mutates(call: AwsCall) -> bool:
    """Whether an answered call may have changed what a checkpoint keeps: a control-plane write (JSON and query
    protocols by operation name; REST by method, S3 at bucket level only, Lambda's invocations excluded)."""
    operation = call.target.rsplit(".", 1)[-1] if call.target else ""
    form = call.body.startswith(b"Action=") or b"&Action=" in call.body[:2048]  # the query protocol (IAM, RDS, EC2)
    if not operation and call.method == "POST" and form:
        from urllib.parse import parse_qs

        operation = (parse_qs(call.body[:2048].decode("utf-8", "replace")).get("Action") or [""])[0]
    if operation:
        return not operation.startswith(READ_PREFIXES) and operation not in DATA_PLANE
    if call.method in ("GET", "HEAD", "OPTIONS"):
        return False
    path = call.path
    if path[:1] == "/" and path[1:5].isdigit():  # a dated REST API (Lambda: /2015-03-31/functions/...)
        return "/invocations" not in path and "/invoke-async" not in path
    # S3, path style: /bucket (create, delete, ?lifecycle, ?policy, ...) is configuration; /bucket/key is an object,
    # and POST /bucket?delete deletes objects
    bucket, _, key = path.lstrip("/").partition("/")
    query = str(call.environ.get("QUERY_STRING", ""))
    return bool(bucket) and not key and not (call.method == "POST" and "delete" in query.split("&"))


def loaded_backends() -> dict[str, Any]:
    """``"<module>:<attribute>"`` -> moto's ``BackendDict`` for every service this process has used (its models
    module is imported), except :data:`WRITTEN_THROUGH`, with at least one account in it."""
    import sys

    from moto.core.base_backend import BackendDict

    found: dict[str, Any] = {}
    seen: set[int] = set()
    for module_name, module in list(sys.modules.items()):
        if not (module_name.startswith("moto.") and module_name.endswith(".models")) or module is None:
            continue
        if module_name.split(".")[1] in WRITTEN_THROUGH:
            continue
        for attribute, value in list(vars(module).items()):
            # defined here, not imported from another service's models
            if not isinstance(value, BackendDict) or id(value) in seen:
                continue
            if getattr(getattr(value, "backend", None), "__module__", module_name) != module_name:
                continue
            seen.add(id(value))
            if len(value):
                found[f"{module_name}:{attribute}"] = value
    return found


def _live_backend(key: str) -> Any:
    import importlib

    module_name, _, attribute = key.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def bucket_configuration() -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], dict[str, str]]]:
    """(account, bucket) -> the bucket's attributes but its objects; and -> its tags."""
    from moto.s3.models import s3_backends

    config: dict[tuple[str, str], dict[str, Any]] = {}
    tags: dict[tuple[str, str], dict[str, str]] = {}
    for account, regions in s3_backends.items():
        backend = regions.get("aws")
        if backend is None:
            continue
        for name, bucket in backend.buckets.items():
            config[(account, name)] = {k: v for k, v in vars(bucket).items() if k not in BUCKET_CONTENT}
            tags[(account, name)] = backend.tagger.get_tag_dict_for_resource(bucket.arn)
    return config, tags


#: What the Kinesis journal restores itself; the rest of a stream (encryption, tags, metrics, consumers) is config.
STREAM_CONTENT = frozenset(
    {"stream_name", "creation_datetime", "region", "account_id", "arn", "shards", "shard_count", "status"}
)


def stream_configuration() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(account, region, stream) -> the stream's attributes but its records and identity."""
    from moto.kinesis.models import kinesis_backends

    config: dict[tuple[str, str, str], dict[str, Any]] = {}
    for account, regions in kinesis_backends.items():
        for region, backend in regions.items():
            for name, stream in backend.streams.items():
                config[(account, region, name)] = {k: v for k, v in vars(stream).items() if k not in STREAM_CONTENT}
    return config


def snapshot_file(state_dir: Path) -> Path:
    return state_dir / "moto" / "snapshot.pickle"


def marker_file(state_dir: Path) -> Path:
    return state_dir / "moto" / "restored.json"


def final_file(state_dir: Path) -> Path:
    return state_dir / "moto" / "snapshot.final"


#: How long a checkpoint's child may pickle and write before it is killed (it holds no lock; the next change retries).
CHILD_SECONDS = 300


def _die_with(parent: int) -> None:
    """In a forked child: be killed when ``parent`` dies (Linux ``PR_SET_PDEATHSIG``), and leave now if it already
    has."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(3)


def _close_inherited_sockets() -> None:
    """In a forked child: close the server's sockets it inherited (the listening one, every client's connection).
    The child only writes a file; holding them kept the port accepting and the connections open after the parent
    closed or lost them, until the child had written its checkpoint. Closing a copy leaves the parent's open."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError, ValueError):  # the listing's own descriptor is gone by now
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                os.close(int(name))


class MotoSnapshot:
    """Extension: checkpoints moto's backends after changes and at a graceful stop, loads them at the next start;
    answers no call."""

    def __init__(self, state_dir: Path) -> None:
        self.path = snapshot_file(state_dir)
        #: {"pid", "taken", "left_out", "final"}, written when a start loaded a snapshot (read by :func:`restored`)
        self.marker = marker_file(state_dir)
        self.final = final_file(state_dir)
        self._changes = threading.Condition()
        self._first_change: float | None = None  # monotonic time of the first change no checkpoint holds yet
        self._last_change = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        return None

    def after(self, call: AwsCall) -> None:
        if not mutates(call):
            return
        with self._changes:
            now = time.monotonic()
            if self._first_change is None:
                self._first_change = now
            self._last_change = now
            self._changes.notify_all()

    def restore(self, endpoint_url: str) -> None:
        """Runs after the S3 mirror and the Kinesis journal restored theirs (the buckets exist to configure)."""
        self.marker.unlink(missing_ok=True)
        final = self.final.exists()
        self.final.unlink(missing_ok=True)  # from now on the snapshot is a checkpoint: later changes may be missing
        if not self.path.exists():
            return
        started = time.monotonic()
        try:
            info = self.path.stat()
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                raise PermissionError(f"{self.path} is not this user's own file with mode 0600: not unpickling it")
            snapshot = pickle.loads(self.path.read_bytes())  # noqa: S301 - written by this endpoint, mode 0600
            self._apply(snapshot)
        except Exception:  # an unreadable or foreign snapshot: `make up` re-applies the roots instead
            log.exception("could not load %s; starting without it (make up re-applies the Terraform roots)", self.path)
            self.path.unlink(missing_ok=True)
            return
        if final:  # its job runs are the runner's saved ones, read once: a checkpoint without them replaces it
            with self._changes:
                self._first_change = self._last_change = time.monotonic()
        self.marker.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "taken": snapshot["taken"],
                    "left_out": snapshot.get("left_out", []),
                    "final": final,
                }
            )
        )
        log.info(
            "restored %d service(s) and %d bucket configuration(s) from the %s taken %s in %.1f s",
            len(snapshot["backends"]),
            len(snapshot["buckets"]),
            "snapshot of the graceful stop" if final else "checkpoint",
            snapshot["taken"],
            time.monotonic() - started,
        )

    @staticmethod
    def _apply(snapshot: dict[str, Any]) -> None:
        import moto
        from moto.s3.models import s3_backends

        if snapshot.get("moto") != moto.__version__:
            raise ValueError(f"taken with moto {snapshot.get('moto')}, this is {moto.__version__}")
        with MOTO_LOCK:
            for key, saved in snapshot["backends"].items():
                live = _live_backend(key)
                live.clear()
                live.update(saved)
            for (account, name), attributes in snapshot["buckets"].items():
                backend = s3_backends[account]["aws"]
                bucket = backend.buckets.get(name)
                if bucket is None:  # deleted since (the mirror is newer than the snapshot)
                    continue
                for attribute, value in attributes.items():
                    setattr(bucket, attribute, value)
                tags = snapshot["tags"].get((account, name))
                if tags:
                    backend.tagger.tag_resource(bucket.arn, [{"Key": k, "Value": v} for k, v in tags.items()])
            if snapshot.get("streams"):
                from moto.kinesis.models import kinesis_backends

                for (account, region, name), attributes in snapshot["streams"].items():
                    stream = kinesis_backends[account][region].streams.get(name)
                    for attribute, value in attributes.items() if stream is not None else ():
                        setattr(stream, attribute, value)

    def start(self, endpoint_url: str) -> None:
        self._thread = threading.Thread(target=self._checkpoints, name="moto-checkpoint", daemon=True)
        self._thread.start()

    def _checkpoints(self) -> None:
        """Take a checkpoint once changes paused for :data:`QUIET_SECONDS` (or :data:`MAX_DELAY_SECONDS` passed)."""
        while True:
            with self._changes:
                while not self._stopping:
                    if self._first_change is not None:
                        now = time.monotonic()
                        due = min(self._last_change + QUIET_SECONDS, self._first_change + MAX_DELAY_SECONDS)
                        if now >= due:
                            break
                        self._changes.wait(due - now)
                    else:
                        self._changes.wait()
                if self._stopping:
                    return
                self._first_change = None  # a change answered from now on marks the next checkpoint
            try:
                self._checkpoint()
            except Exception:  # the next change tries again; a kill before it re-applies more
                log.exception("checkpoint failed")

    def stop(self) -> None:
        """Called once the endpoint answers nothing more and every request in flight is done."""
        with self._changes:
            self._stopping = True
            self._changes.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._write(final=True):
            self.final.touch(mode=0o600)

    def _checkpoint(self) -> bool:
        """A checkpoint without stopping the endpoint: the process forks while it holds the request lock (moto's
        state as of that instant, copy-on-write: milliseconds) and the child pickles and writes it while the parent
        answers requests again. Pickling under the lock paused every call for the whole pickle (1.3 s for 25 MB
        under load: a client's attempt could time out and be sent again)."""
        started = time.monotonic()
        parent = os.getpid()
        with MOTO_LOCK:
            pid = os.fork()
            if pid == 0:  # the child: one thread, a frozen copy; it never returns into the server
                code = 2
                try:
                    _die_with(parent)  # a killed endpoint's late checkpoint must not replace its successor's
                    _close_inherited_sockets()
                    code = 0 if self._write(final=False, locked=False) else 1
                finally:
                    os._exit(code)
        paused = time.monotonic() - started
        deadline = time.monotonic() + CHILD_SECONDS
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code = -signal.SIGKILL
                break
            time.sleep(0.05)
        if code != 0:
            log.warning("checkpoint child exited %s: no checkpoint written (the next change tries again)", code)
        else:
            log.info("checkpoint: requests paused %.3f s for the fork", paused)
        return code == 0

    def _write(self, final: bool, locked: bool = True) -> bool:
        """Pickle moto's backends (a checkpoint: without Glue job runs) and replace the snapshot file with them;
        under the request lock unless the caller is a forked copy (``locked=False``: nobody else runs there)."""
        import moto

        started = time.monotonic()
        with MOTO_LOCK if locked else contextlib.nullcontext():
            backends = loaded_backends()
            buckets, tags = bucket_configuration()
            streams = stream_configuration()
            payload = {
                "moto": moto.__version__,
                "taken": datetime.now(UTC).isoformat(timespec="seconds"),
                "backends": backends,
                "buckets": buckets,
                "tags": tags,
                "streams": streams,
            }
            try:
                data = _dumps(payload, without_job_runs=not final)
            except Exception as whole:  # find the service that cannot be pickled, keep the others
                kept = {}
                for service, backend in backends.items():
                    try:
                        _dumps(backend, without_job_runs=not final)
                        kept[service] = backend
                    except Exception as exc:
                        log.warning("snapshot leaves out %s (%s: %s)", service, type(exc).__name__, exc)
                payload["backends"] = kept
                payload["left_out"] = sorted(set(backends) - set(kept))
                try:
                    data = _dumps(payload, without_job_runs=not final)
                except Exception:
                    log.warning("no snapshot taken (%s): make up will re-apply the Terraform roots", whole)
                    return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.final.unlink(missing_ok=True)  # a checkpoint, or a final snapshot until it is complete
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, self.path)
        log.info(
            "%s %d service(s) and %d bucket configuration(s) to %s (%.1f MB) in %.1f s",
            "saved" if final else "checkpoint:",
            len(payload["backends"]),
            len(buckets),
            self.path,
            len(data) / 1e6,
            time.monotonic() - started,
        )
        return True


def restored(state_dir: Path, pid: int) -> dict[str, Any] | None:
    """What the endpoint process ``pid`` loaded from a snapshot at its start ({"taken", "left_out", "final": a graceful
    stop's, else a checkpoint}), or None when it loaded none (first start, a foreign snapshot). Read once: the marker is
    removed."""
    marker = marker_file(state_dir)
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    marker.unlink(missing_ok=True)
    return info if info.get("pid") == pid else None
