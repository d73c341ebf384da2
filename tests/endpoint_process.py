"""The local AWS endpoint as its own process (``python -m recsys_local.aws_endpoint``), as the stack runs it."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from recsys_local import pythonpath
from recsys_local.clients import local_client


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux ``ip_local_port_range``)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port outside the ephemeral range, for an endpoint restarted on the same port. A port the kernel hands
    out (``bind(0)``) is one any outgoing connection may take as its source port while the endpoint is down (the
    test lanes open thousands): the restart then fails with "Address already in use"."""
    low, high = ephemeral_ports()
    above, below = list(range(high + 1, 65536)), list(range(max(1024, low - 5000), low))
    candidates = above if len(above) >= 1000 else below or above
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port outside the ephemeral range {low}-{high}")


class Endpoint:
    """``python -m recsys_local.aws_endpoint`` as a child process on a fixed port and state directory."""

    def __init__(self, state_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "FIREHOSE_POLL_SECONDS": "0.2",
            "FIREHOSE_BUFFER_SECONDS": "0.5",
            "FIREHOSE_RETRY_BACKOFF_SECONDS": "0.1",
            "PYTHONPATH": pythonpath(),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "recsys_local.aws_endpoint", "--port", str(self.port), "--state-dir", "."],
                cwd=self.state_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.client("s3").list_buckets()
                return
            except Exception:
                assert self.process.poll() is None, self.log_path.read_text()[-3000:]
                time.sleep(0.1)
        raise AssertionError("the endpoint did not answer within 60 s")

    def stop(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=90)

    def client(self, service: str, attempts: int = 1):
        # one attempt by default: a put retried by botocore after a kill could land twice and blur what was
        # acknowledged (and the readiness probe above loops itself: a botocore retry of its refused connection
        # would read as a lost answer in the access log)
        return local_client(service, self.url, attempts=attempts)
