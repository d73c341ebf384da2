"""The local AWS endpoint as the stack runs it: the server of :mod:`recsys_local.aws_server` with the platform's
executors, in order, until SIGTERM or SIGINT. Run it with ``python -m recsys_local.aws_endpoint --help``.

The server knows the executors only by their protocol (:class:`~recsys_local.aws_server.Extension`); this module
names them, and each executor imports the server's protocol: the arrows run one way.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from recsys_local import iam_enforce, service_roles
from recsys_local.aws_server import LocalAwsServer

log = logging.getLogger("recsys_local.aws")

#: The executors loaded into the endpoint, as ``module:Class``; each takes ``(state_dir: Path)``.
EXTENSIONS: list[str] = [
    "recsys_local.iam_audit:ActionLog",  # first: it wraps moto's authorization before anything else runs
    "recsys_local.fidelity:MotoFidelity",
    "recsys_local.s3_persistence:S3Persistence",
    "recsys_local.kinesis_persistence:KinesisPersistence",
    "recsys_local.moto_snapshot:MotoSnapshot",  # after S3's restore: it configures the buckets the mirror made
    "recsys_local.glue_runner:GlueRunner",
    "recsys_local.lambda_runner:LambdaRunner",
    "recsys_local.firehose_runner:FirehoseRunner",
]
#: The extension that refuses what the caller's policies do not allow: right after the request log, before anything
#: answers.
IAM_ENFORCEMENT = "recsys_local.iam_enforce:IamEnforcement"


def extensions(enforce_iam: bool) -> list[str]:
    """The endpoint's extensions, in order; with IAM enforcement when asked."""
    return [EXTENSIONS[0], IAM_ENFORCEMENT, *EXTENSIONS[1:]] if enforce_iam else list(EXTENSIONS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_local.aws_endpoint",
        description="Serve the local AWS endpoint (moto plus the stack's executors) until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--state-dir", type=Path, required=True, help="where executors keep state across restarts")
    parser.add_argument(
        "--enforce-iam",
        choices=("on", "audit"),
        help="authorize every request against the caller's IAM policies, as AWS does (recsys_local.iam_enforce); "
        "audit: log what would be refused and refuse nothing. The emulator's own credentials (test) stay the "
        "account's administrator",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state_dir = args.state_dir.resolve()  # executors hand paths to subprocesses with other working directories
    state_dir.mkdir(parents=True, exist_ok=True)
    iam_enforce.AUDIT_ONLY = args.enforce_iam == "audit"  # read by the extension when it loads
    service_roles.ENFORCING = args.enforce_iam is not None  # the executors act as the roles AWS's services would
    server = LocalAwsServer(args.host, args.port, state_dir, extensions(enforce_iam=args.enforce_iam is not None))
    stopped = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    log.info("local AWS endpoint on %s with %d executor(s)", server.endpoint_url, len(server.extensions))
    # not a bare wait(): the kernel may deliver SIGTERM to any of the server's threads, and then the main thread,
    # blocked on a lock, never runs the handler (seen: a stop ignored for 90 s); a timed wait re-checks twice a second
    while not stopped.wait(timeout=0.5):
        pass
    server.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
