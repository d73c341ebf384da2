"""Lambda invocations on the local stack: ``Invoke`` runs the code that was deployed to the function.

moto stores a function's zip (from ``ZipFile`` or ``S3Bucket``/``S3Key``) but runs nothing without Docker. This
executor unzips the deployed code (keyed by its sha256), starts a warm worker per function and code version
(``lambda_worker.py`` with ``python -S``: the zip, a boto3 runtime and the standard library only) with the
function's configured environment plus the local endpoint, and answers ``Invoke`` as Lambda does: the handler's
result as the payload, or ``X-Amz-Function-Error: Unhandled`` with ``{errorMessage, errorType, stackTrace}``. A warm
worker keeps module state (such as a database connection) across invocations; new code or configuration gets a new
worker; the function's ``Timeout`` is enforced.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys.localstack.aws_server import AwsCall, Forward

log = logging.getLogger("recsys.localstack.lambda")

INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
#: What the Lambda Python runtime provides besides the standard library.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


@dataclass
class Worker:
    key: str
    process: subprocess.Popen[str]
    lock: threading.Lock


class LambdaRunner:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "lambda"
        self.endpoint_url = ""
        self.workers: dict[str, Worker] = {}
        self.lock = threading.Lock()

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
        name = match.group("name").split(":")[-1] if match.group("name").startswith("arn:") else match.group("name")
        return self.invoke(name, call)

    # --- runtime --------------------------------------------------------------------------------------------------
    def _runtime(self) -> Path:
        """A folder with the runtime's libraries (links into this environment's site-packages)."""
        import importlib

        runtime = self.root / "runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        for name in RUNTIME_MODULES:
            module = importlib.import_module(name)
            source = Path(module.__file__)
            source = source.parent if source.name == "__init__.py" else source
            link = runtime / source.name
            if not link.exists():
                link.symlink_to(source)
        return runtime

    def _function(self, name: str) -> Any:
        from moto.awslambda.models import lambda_backends

        from recsys.config import LOCAL_ACCOUNT_ID

        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        return lambda_backends[LOCAL_ACCOUNT_ID][region].get_function(name)

    def _code_dir(self, name: str, code: bytes) -> Path:
        digest = hashlib.sha256(code).hexdigest()[:16]
        folder = self.root / name / digest
        if not folder.exists():
            tmp = folder.with_suffix(".tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(tmp)
            tmp.rename(folder)
        return folder

    def _worker(self, name: str, fn: Any) -> Worker:
        code_dir = self._code_dir(name, fn.code_bytes)
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            **{str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",  # moto's placeholder credentials
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "LAMBDA_TASK_ROOT": str(code_dir),
        }
        key = hashlib.sha256(json.dumps([str(code_dir), fn.handler, env], sort_keys=True).encode()).hexdigest()
        with self.lock:
            worker = self.workers.get(name)
            if worker is not None and worker.key == key and worker.process.poll() is None:
                return worker
            if worker is not None:
                worker.process.kill()
            log_path = self.root / name / "function.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            process = subprocess.Popen(
                [
                    sys.executable,
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
            worker = Worker(key, process, threading.Lock())
            self.workers[name] = worker
            log.info("started a warm worker for %s (code %s)", name, code_dir.name)
            return worker

    def run(self, name: str, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """(result, error) of one invocation."""
        fn = self._function(name)
        worker = self._worker(name, fn)
        with worker.lock:
            assert worker.process.stdin is not None
            assert worker.process.stdout is not None
            worker.process.stdin.write(json.dumps({"event": event}) + "\n")
            worker.process.stdin.flush()
            answer: dict[str, Any] = {}

            def read() -> None:
                line = worker.process.stdout.readline()  # type: ignore[union-attr]
                if line:
                    answer.update(json.loads(line))

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(timeout=float(fn.timeout or 3))
            if reader.is_alive() or not answer:
                worker.process.kill()
                message = (
                    f"Task timed out after {float(fn.timeout or 3):.2f} seconds"
                    if reader.is_alive()
                    else "Runtime exited without providing a reason"
                )
                return None, {
                    "errorType": "Sandbox.Timedout" if reader.is_alive() else "Runtime.ExitError",
                    "errorMessage": message,
                }
        return answer.get("result"), answer.get("error")

    def invoke(self, name: str, call: AwsCall) -> Response:
        from moto.awslambda.exceptions import UnknownFunctionException

        try:
            self._function(name)
        except UnknownFunctionException:
            return Response(
                json.dumps({"Type": "User", "Message": f"Function not found: {name}"}),
                status=404,
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
                content_type="application/json",
            )
        event = json.loads(call.body or b"{}")
        invocation_type = call.environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if invocation_type == "Event":
            threading.Thread(target=self.run, args=(name, event), daemon=True).start()
            return Response(b"", status=202)
        result, error = self.run(name, event)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return Response(json.dumps(error), status=200, headers=headers, content_type="application/json")
        return Response(json.dumps(result), status=200, headers=headers, content_type="application/json")
