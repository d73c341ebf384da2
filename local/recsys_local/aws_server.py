"""The local AWS endpoint: a moto server wrapped by executors for what moto accepts but never runs.

moto answers the AWS APIs the pipelines use, but a Glue job run reports SUCCEEDED without running anything, a Lambda
invoke needs Docker, and a Firehose delivery stream never reads its Kinesis source. So the endpoint is one WSGI
application in front of moto:

    client (Airflow provider hooks, boto3) --> InterceptingApp --> moto
                                                  |
                                                  +-- Extension.intercept(call, forward): may answer a call itself,
                                                  |   or forward it to moto and amend moto's answer
                                                  +-- Extension.start(endpoint): background workers that act like the
                                                      service (run a Glue script, poll Kinesis for Firehose)

Every extension sees each request; the first one that returns a response wins, otherwise moto answers. The server
knows extensions only by this protocol: which ones run, in which order, is the caller's list (``module:Class``,
:data:`recsys_local.aws_endpoint.EXTENSIONS`), so each pipeline adds its own without touching the server and no
executor is imported by the server it plugs into.

moto's models are plain dicts that are not safe for concurrent use (its own code says so), while the server runs a
thread per request. Unserialized, concurrent calls raced: ``dictionary changed size during iteration`` answered 500
in the middle of a create that had already been applied, the client's SDK retried, and the retry met
``AlreadyExists`` (a Terraform apply then failed with a resource outside its state); two ``PutRecord`` calls could
take the same Kinesis sequence number. So every call into moto holds :data:`MOTO_LOCK` (extensions that read moto's
backends directly take it too); an extension's own slow work (running a Glue script, invoking a Lambda) does not.
The endpoint as the stack runs it: ``python -m recsys_local.aws_endpoint --help``.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

log = logging.getLogger("recsys_local.aws")

#: Held for every call into moto and every direct use of its backends (re-entrant: a patched model may call moto).
MOTO_LOCK = threading.RLock()


@dataclass
class AwsCall:
    """One request to the endpoint, with its body already read so it can be inspected and forwarded."""

    environ: dict[str, Any]
    body: bytes

    @property
    def target(self) -> str:
        """The JSON-protocol operation (``AWSGlue.StartJobRun``), empty for REST-style services."""
        return str(self.environ.get("HTTP_X_AMZ_TARGET", ""))

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET"))

    @property
    def path(self) -> str:
        return str(self.environ.get("PATH_INFO", ""))

    def json(self) -> dict[str, Any]:
        return json.loads(self.body or b"{}")

    def fresh_environ(self) -> dict[str, Any]:
        """A copy of the WSGI environ whose input stream can be read again (moto reads it)."""
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(self.body)
        environ["CONTENT_LENGTH"] = str(len(self.body))
        return environ


Forward = Callable[[AwsCall], Response]


class Extension(Protocol):
    """An executor for something moto does not run. Implementations must be thread-safe."""

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        """Answer ``call`` (possibly after ``forward``-ing it to moto), or return None to let moto answer."""
        ...

    def restore(self, endpoint_url: str) -> None:
        """Put back state saved by :meth:`stop`, through a private endpoint nobody else talks to yet."""
        ...

    def start(self, endpoint_url: str) -> None:
        """Start background workers once the endpoint listens."""
        ...

    def stop(self) -> None:
        """Stop workers and persist what must survive a restart."""
        ...

    # Optional: ``after(call)`` runs once the call has been answered (by an extension or moto): an extension that
    # defines it learns of every completed call (the snapshot's checkpoints follow changes this way).


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/x-amz-json-1.1")


class InterceptingApp:
    """WSGI app: offers every call to the extensions, then to moto."""

    def __init__(self, moto_app: Callable[..., Any], extensions: list[Extension]) -> None:
        self.moto_app = moto_app
        self.extensions = extensions
        self._in_flight = 0
        self._closing = False
        self._idle = threading.Condition()

    def call_moto(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """moto's whole answer (status, headers, body), computed under :data:`MOTO_LOCK`: the body is read before the
        lock is released, since moto may build it lazily from its models."""
        answer: dict[str, Any] = {}
        body: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            answer["status"], answer["headers"] = status, headers
            return body.append

        with MOTO_LOCK:
            chunks = self.moto_app(environ, start_response)
            try:
                body.extend(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        return answer["status"], answer["headers"], body

    def forward(self, call: AwsCall) -> Response:
        status, headers, body = self.call_moto(call.fresh_environ())
        return Response(body, status=status, headers=headers)

    def enter(self) -> bool:
        """Count a request the server took, until its answer is written (:meth:`leave`); False once closing."""
        with self._idle:
            if self._closing:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def close_and_wait(self, timeout: float) -> bool:
        """Refuse requests from now on and wait until every answer already taken is written to its socket; False
        when some still are not after ``timeout`` seconds."""
        with self._idle:
            self._closing = True
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = Request(environ).get_data(cache=False)
        call = AwsCall(environ=environ, body=body)
        try:
            for extension in self.extensions:
                try:
                    response = extension.intercept(call, self.forward)
                except Exception:  # an executor bug must surface to the client as a 500, not kill the server
                    log.exception("extension %s failed on %s %s", type(extension).__name__, call.target, call.path)
                    response = json_response({"__type": "InternalFailure", "message": "local executor failed"}, 500)
                if response is not None:
                    return response(environ, start_response)
            status, headers, answer = self.call_moto(call.fresh_environ())
            start_response(status, headers)
            return answer
        finally:
            self._after(call)

    def _after(self, call: AwsCall) -> None:
        for extension in self.extensions:
            after = getattr(extension, "after", None)
            if after is None:
                continue
            try:
                after(call)
            except Exception:  # bookkeeping: its failure must not fail a call already answered
                log.exception("extension %s failed after %s %s", type(extension).__name__, call.target, call.path)


def load_extensions(state_dir: Path, names: list[str]) -> list[Extension]:
    """An instance of each extension named ``module:Class``, in order; each class takes ``(state_dir: Path)``."""
    loaded: list[Extension] = []
    for spec in names:
        module_name, _, class_name = spec.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        loaded.append(cls(state_dir))
    return loaded


def request_handler() -> type:
    """moto's request handler whose access log also names the operation (``X-Amz-Target``: ``POST /`` alone does not
    tell a KMS call from a Kinesis one) and a client's retry (``amz-sdk-request: attempt=N``, N > 1)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class LoggingRequestHandler(MotoRequestHandler):
        def run_wsgi(self) -> None:
            # counted until the answer is on the socket: the app returning is not enough, since werkzeug writes
            # the body after it. A stop that waited only for the app cut an acknowledged PutRecords after its
            # headers (the client read a 200 with an empty body)
            app = self.server.app
            if not app.enter():
                self.close_connection = True
                self.send_error(503, "the endpoint is stopping")
                return
            try:
                super().run_wsgi()
            finally:
                app.leave()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            extra = ""
            target = self.headers.get("X-Amz-Target")
            if target:
                extra += f" {target}"
            attempt = (self.headers.get("amz-sdk-request") or "").split(";")[0].strip()
            if attempt.startswith("attempt=") and attempt != "attempt=1":
                extra += f" (retry {attempt})"
            self.log("info", '"%s" %s %s%s', self.requestline, code, size, extra)

    return LoggingRequestHandler


class LocalAwsServer:
    """moto + the extensions named ``module:Class`` (in order) on host:port, usable in-process (tests) or as the
    stack's supervised process (:mod:`recsys_local.aws_endpoint`)."""

    def __init__(self, host: str, port: int, state_dir: Path, extensions: list[str]) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.state_dir = state_dir
        self.extensions = load_extensions(state_dir, extensions)
        self._app = InterceptingApp(DomainDispatcherApplication(create_backend_app), self.extensions)
        self._handler = request_handler()
        self._server = make_server(host, port, self._app, threaded=True, request_handler=self._handler)
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _restore(self) -> None:
        """Restore saved state through a private, single-threaded endpoint before the public port answers:
        moto creates its per-account backends lazily and concurrent first requests can race."""
        host = self._server.server_address[0]
        private = make_server(host, 0, self._app, threaded=False, request_handler=self._handler)
        thread = threading.Thread(target=private.serve_forever, name="moto-restore", daemon=True)
        thread.start()
        try:
            for extension in self.extensions:
                extension.restore(f"http://{host}:{private.server_address[1]}")
        finally:
            private.shutdown()
            thread.join(timeout=10)

    def start(self) -> None:
        self._restore()
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        for extension in self.extensions:
            extension.start(self.endpoint_url)

    def stop(self) -> None:
        """Stop answering, let the requests already taken finish (each is journaled before its answer), then stop the
        extensions. Stopping the journals while the port still answered lost acknowledged writes: a ``PutRecords``
        taken after the Kinesis journal closed was applied and acknowledged, then gone after the restart."""
        self._server.shutdown()
        self._server.server_close()  # new connections are refused at once instead of waiting in the backlog
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self._app.close_and_wait(timeout=60):
            log.warning("stopping with requests still in flight after 60 s")
        for extension in reversed(self.extensions):
            try:
                extension.stop()
            except Exception:  # one extension's failure must not keep the others from saving theirs
                log.exception("extension %s failed to stop", type(extension).__name__)
