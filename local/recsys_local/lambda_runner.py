"""Lambda invocations on the local stack: ``Invoke`` runs the code that was deployed to the function.

moto stores a function's zip (from ``ZipFile`` or ``S3Bucket``/``S3Key``) but runs nothing without Docker. This
executor unzips the deployed code (keyed by its sha256), starts a warm worker per function and code version
(``lambda_worker.py`` with ``python -S``: the zip, a boto3 runtime and the standard library only) with the
function's configured environment plus the local endpoint, and answers ``Invoke`` as Lambda does: the handler's
result as the payload, or ``X-Amz-Function-Error: Unhandled`` with ``{errorMessage, errorType, stackTrace}``. A warm
worker keeps module state (such as a database connection) across invocations; new code or configuration gets a new
worker; the function's ``Timeout`` is enforced.

Qualifiers resolve as in AWS: ``name``, ``name:live``, a full ARN with or without a qualifier, or ``?Qualifier=``
run the code and configuration of that version or alias (a published version keeps the package and environment it
was published with), and ``X-Amz-Executed-Version`` names the version that ran. What the function prints goes to
CloudWatch Logs ``/aws/lambda/<function>`` (stream ``YYYY/MM/DD/[<version>]<worker>``, with ``START``/``END``/
``REPORT`` lines per request), so ``aws logs tail`` works locally as in AWS.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from werkzeug.wrappers import Response

from recsys.config import aws_region
from recsys.streaming.packaging import RUNTIME_MODULES
from recsys_local import service_roles
from recsys_local.aws_server import MOTO_LOCK, AwsCall, Forward
from recsys_local.clients import local_client

log = logging.getLogger("recsys_local.lambda")

INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
LOG_GROUP = "/aws/lambda/{function}"
#: What the Lambda Python runtime provides besides the standard library.
#: Lambda's synchronous response payload limit (6 MB).
RESPONSE_LIMIT = 6 * 1024 * 1024


def runtime_libraries(folder: Path) -> Path:
    """``folder`` with the Lambda runtime's libraries (:data:`~recsys.streaming.packaging.RUNTIME_MODULES`, links
    into this environment's site-packages), as the Lambda Python runtime puts them on the path."""
    import importlib

    folder.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_MODULES:
        module = importlib.import_module(name)
        source = Path(str(module.__file__))
        source = source.parent if source.name == "__init__.py" else source
        link = folder / source.name
        if not link.exists():
            link.symlink_to(source)
    return folder


@dataclass
class Worker:
    key: str
    process: subprocess.Popen[str]
    lock: threading.Lock
    log_path: Path
    log_stream: str
    log_offset: int = 0


class LambdaRunner:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "lambda"
        self.endpoint_url = ""
        self.workers: dict[str, Worker] = {}
        self.lock = threading.Lock()
        self.logs: dict[str, Any] = {}  # CloudWatch Logs clients by the execution role's session key
        # the execution roles' sessions, assumed as Lambda (an enforcing endpoint only)
        self.sessions = service_roles.Sessions(service_roles.LAMBDA)

    def restore(self, endpoint_url: str) -> None:
        return None

    def start(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.runtime_dir = self._runtime()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.process.kill()

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        match = INVOKE.match(call.path)
        if call.method != "POST" or match is None:
            return None
        from urllib.parse import parse_qs, unquote

        query = parse_qs(str(call.environ.get("QUERY_STRING", "")))
        name, qualifier = split_function_name(unquote(match.group("name")))
        qualifier = (query.get("Qualifier") or [qualifier])[0]
        return self.invoke(name, qualifier, call)

    # --- runtime --------------------------------------------------------------------------------------------------
    def _runtime(self) -> Path:
        return runtime_libraries(self.root / "runtime")

    def _function(self, name: str, qualifier: str | None = None) -> Any:
        """moto's function object of the version ``qualifier`` names (an alias resolves to its version)."""
        from moto.awslambda.models import lambda_backends

        from recsys.config import LOCAL_ACCOUNT_ID

        region = aws_region()
        with MOTO_LOCK:
            return lambda_backends[LOCAL_ACCOUNT_ID][region].get_function(name, qualifier or None)

    def _code_dir(self, name: str, code: bytes) -> Path:
        """The unzipped package, once per code hash: each unzip goes to its own temporary folder and is renamed into
        place, so two first invocations at once neither collide nor see a half-extracted package."""
        digest = hashlib.sha256(code).hexdigest()[:16]
        folder = self.root / name / digest
        if not folder.exists():
            tmp = folder.with_name(f".{digest}.{uuid.uuid4().hex}")
            tmp.mkdir(parents=True)
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(tmp)
            try:
                tmp.rename(folder)
            except OSError:  # another invocation got there first: its copy is the same code
                shutil.rmtree(tmp, ignore_errors=True)
                if not folder.exists():
                    raise
        return folder

    def _worker(self, name: str, fn: Any) -> Worker:
        code_dir = self._code_dir(name, fn.code_bytes)
        version = str(getattr(fn, "version", "$LATEST"))
        # as Lambda: the code runs with a session of the execution role (kept while it lasts: the worker stays warm)
        session = self.sessions.get(self.endpoint_url, str(fn.role or ""), name)
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            **{str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **(session or {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}),  # else moto's own
            "AWS_REGION": aws_region(),
            "AWS_DEFAULT_REGION": aws_region(),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "LAMBDA_TASK_ROOT": str(code_dir),
        }
        key = hashlib.sha256(json.dumps([str(code_dir), fn.handler, env], sort_keys=True).encode()).hexdigest()
        slot = f"{name}:{version}"
        with self.lock:
            worker = self.workers.get(slot)
            if worker is not None and worker.key == key and worker.process.poll() is None:
                return worker
            if worker is not None:
                worker.process.kill()
            log_path = self.root / name / f"worker-{key[:12]}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",  # isolated: no script folder (recsys_local) and no PYTHON* variables on the path
                    "-S",
                    str(Path(__file__).with_name("lambda_worker.py")),
                    str(code_dir),
                    str(self.runtime_dir),
                    fn.handler,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=open(log_path, "a"),  # noqa: SIM115 - the worker owns its log for its lifetime
                text=True,
                env=env,
                cwd=code_dir,
            )
            today = time.strftime("%Y/%m/%d", time.gmtime())
            worker = Worker(key, process, threading.Lock(), log_path, f"{today}/[{version}]{key[:32]}")
            self.workers[slot] = worker
            log.info("started a warm worker for %s version %s (code %s)", name, version, code_dir.name)
            return worker

    def run(self, name: str, event: Any, qualifier: str | None = None) -> tuple[Any, dict[str, Any] | None]:
        """(result, error) of one invocation of the version ``qualifier`` names."""
        fn = self._function(name, qualifier)
        worker = self._worker(name, fn)
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        timeout = float(fn.timeout or 3)
        version = str(getattr(fn, "version", "$LATEST"))
        context = {
            "aws_request_id": request_id,
            "function_name": name,
            "function_version": version,
            "invoked_function_arn": ":".join(fn.function_arn.split(":")[:7]) + (f":{qualifier}" if qualifier else ""),
            "memory_limit_in_mb": int(getattr(fn, "memory_size", 128) or 128),
            "log_group_name": LOG_GROUP.format(function=name),
            "log_stream_name": worker.log_stream,
            "deadline_ms": int(time.time() * 1000 + timeout * 1000),
        }
        with worker.lock:
            try:
                return self._exchange(worker, timeout, {"event": event, "context": context})
            finally:
                self._ship_logs(name, worker, request_id, started, version, str(fn.role or ""))

    def _exchange(self, worker: Worker, timeout: float, request: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        assert worker.process.stdin is not None
        assert worker.process.stdout is not None
        worker.process.stdin.write(json.dumps(request) + "\n")
        worker.process.stdin.flush()
        answer: dict[str, Any] = {}

        def read() -> None:
            line = worker.process.stdout.readline()  # type: ignore[union-attr]
            if line:
                answer.update(json.loads(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=timeout)
        if reader.is_alive() or not answer:
            worker.process.kill()
            message = (
                f"Task timed out after {timeout:.2f} seconds"
                if reader.is_alive()
                else "Runtime exited without providing a reason"
            )
            return None, {
                "errorType": "Sandbox.Timedout" if reader.is_alive() else "Runtime.ExitError",
                "errorMessage": message,
            }
        return answer.get("result"), answer.get("error")

    def _ship_logs(self, name: str, worker: Worker, request_id: str, started: float, version: str, role: str) -> None:
        """The request's log lines (what the handler printed meanwhile) to CloudWatch Logs, as Lambda does: with the
        execution role's session (its logs:CreateLogStream and logs:PutLogEvents; logs:CreateLogGroup only when the
        group does not exist, which Terraform creates)."""
        try:
            with open(worker.log_path, "rb") as handle:
                handle.seek(worker.log_offset)
                printed = handle.read().decode(errors="replace")
                worker.log_offset = handle.tell()
        except OSError:
            printed = ""
        now = int(time.time() * 1000)
        elapsed = (time.monotonic() - started) * 1000
        lines = [f"START RequestId: {request_id} Version: {version}"]
        lines += [line for line in printed.splitlines() if line.strip()]
        lines += [f"END RequestId: {request_id}", f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms"]
        group = LOG_GROUP.format(function=name)
        events = [{"timestamp": now, "message": line} for line in lines]
        try:
            session = self.sessions.get(self.endpoint_url, role, name)
            key = (session or {}).get("AWS_ACCESS_KEY_ID", "")
            logs = self.logs.get(key)
            if logs is None:  # one client per session (a renewed session gets a new one; the old ones go)
                if len(self.logs) > 16:
                    self.logs.clear()
                logs = self.logs[key] = local_client("logs", self.endpoint_url, credentials=session)
            try:
                logs.put_log_events(logGroupName=group, logStreamName=worker.log_stream, logEvents=events)
            except logs.exceptions.ResourceNotFoundException:  # a new worker's stream (or no group): once each
                try:
                    logs.create_log_stream(logGroupName=group, logStreamName=worker.log_stream)
                except logs.exceptions.ResourceAlreadyExistsException:
                    pass
                except logs.exceptions.ResourceNotFoundException:  # no group: Lambda creates it if the role may
                    # another worker of the function may have made it meanwhile
                    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                        logs.create_log_group(logGroupName=group)
                    logs.create_log_stream(logGroupName=group, logStreamName=worker.log_stream)
                logs.put_log_events(logGroupName=group, logStreamName=worker.log_stream, logEvents=events)
        except Exception:  # logging must never fail the invocation; the worker's file keeps every line
            log.exception("could not ship %s's logs to CloudWatch Logs", name)

    def invoke(self, name: str, qualifier: str | None, call: AwsCall) -> Response:
        from moto.awslambda.exceptions import UnknownFunctionException

        try:
            fn = self._function(name, qualifier)
        except UnknownFunctionException:
            shown = f"{name}:{qualifier}" if qualifier else name
            return Response(
                json.dumps({"Type": "User", "Message": f"Function not found: {shown}"}),
                status=404,
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
                content_type="application/json",
            )
        event = json.loads(call.body or b"{}")
        try:  # the execution role is assumed before the code runs (an enforcing endpoint refuses a missing role)
            self.sessions.get(self.endpoint_url, str(fn.role or ""), name)
        except ClientError as exc:
            return Response(
                json.dumps(
                    {
                        "Type": "User",
                        "Message": f"The role defined for the function cannot be assumed by Lambda: {exc}",
                    }
                ),
                status=403,
                headers={"x-amzn-ErrorType": "AccessDeniedException"},
                content_type="application/json",
            )
        invocation_type = call.environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if invocation_type == "Event":
            threading.Thread(target=self.run, args=(name, event, qualifier), daemon=True).start()
            return Response(b"", status=202)
        result, error = self.run(name, event, qualifier)
        headers = {"X-Amz-Executed-Version": str(getattr(fn, "version", "$LATEST"))}
        body = json.dumps(result)
        if error is None and len(body) > RESPONSE_LIMIT:
            error = {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                f"({RESPONSE_LIMIT} bytes).",
            }
        if error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return Response(json.dumps(error), status=200, headers=headers, content_type="application/json")
        return Response(body, status=200, headers=headers, content_type="application/json")


def split_function_name(value: str) -> tuple[str, str | None]:
    """(name, qualifier) of ``name``, ``name:qualifier``, or a function ARN with or without a qualifier."""
    if value.startswith("arn:"):
        parts = value.split(":")  # arn:aws:lambda:region:account:function:name[:qualifier]
        return parts[6], (parts[7] if len(parts) > 7 else None)
    name, _, qualifier = value.partition(":")
    return name, qualifier or None
