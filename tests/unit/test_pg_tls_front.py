"""The vector DB's TLS front (recsys_local.pg_tls) in-process, with no PostgreSQL behind it: what it refuses and
what a client hears when the server is down."""

from __future__ import annotations

import asyncio
import socket
import threading

import psycopg
import pytest

from recsys_local import pg_tls, tls


@pytest.fixture
def front(tmp_path):
    files = tls.ensure(tmp_path / "stack", "127.0.0.1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = pg_tls.TlsFront(str(tmp_path / "no-server" / ".s.PGSQL.5432"), pg_tls.tls_context(
        str(files.cert), str(files.key)), "postgres")  # fmt: skip
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(handler.handle, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield {"host": "127.0.0.1", "port": port, "dbname": "postgres", "sslrootcert": str(files.ca), "connect_timeout": 5}
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


def test_a_client_without_tls_is_refused_with_the_reason(front):
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(**front, user="recsys", password="x", sslmode="disable")


def test_the_bootstrap_superuser_is_refused_over_tcp(front):
    with pytest.raises(psycopg.OperationalError, match="local socket only"):
        psycopg.connect(**front, user="postgres", password="x", sslmode="verify-full")


def test_a_down_server_is_reported_as_such_after_a_verified_handshake(front):
    with pytest.raises(psycopg.OperationalError, match="database server is not running"):
        psycopg.connect(**front, user="recsys", password="x", sslmode="verify-full")


def test_a_client_that_trusts_another_ca_rejects_the_front(front):
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**{**front, "sslrootcert": "/etc/ssl/certs/ca-certificates.crt"}, user="recsys",
                        password="x", sslmode="verify-full")  # fmt: skip


def test_startup_packets_are_read_as_postgresql_frames_them():
    packet = (8 + 10 + 7).to_bytes(4, "big") + (196608).to_bytes(4, "big") + b"user\0alice\0\0"
    assert pg_tls.startup_parameters(packet) == {"user": "alice"}
    message = pg_tls.error_response("nope")
    assert message[:1] == b"E"
    assert int.from_bytes(message[1:5], "big") == len(message) - 1
