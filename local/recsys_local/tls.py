"""TLS for the local stack's databases: a private CA (per checkout, like the passwords) and one server certificate.

AWS clients verify RDS's certificates against Amazon's RDS CA bundle; locally both databases serve a certificate
signed by this CA, so the very same client settings (``sslmode=verify-full`` + a CA file; JDBC SSL with a trusted
certificate) run against the local stack, with the local CA file where AWS has the RDS bundle. Files under
``<stack home>/tls/``: ``ca.pem`` (public), ``server.pem`` and ``server.key`` (mode 0600). The server certificate
names the stack's host (IP and DNS SANs: ``127.0.0.1``, ``localhost``, the configured host) and is renewed when it
expires within 30 days or no longer names the host.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

RENEW_BEFORE = dt.timedelta(days=30)
VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def files(home: Path) -> TlsFiles:
    folder = home / "tls"
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")


def _names(host: str) -> list[str]:
    return sorted({"127.0.0.1", "localhost", host})


def _san(host: str):  # cryptography's types are imported lazily
    from cryptography import x509

    entries = []
    for name in _names(host):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _current(tls: TlsFiles, host: str) -> bool:
    from cryptography import x509

    if not (tls.ca.is_file() and tls.cert.is_file() and tls.key.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    named = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    fresh = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE
    return fresh and set(_names(host)) <= named


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def ensure(home: Path, host: str) -> TlsFiles:
    """The stack's CA and server certificate, created (or renewed) when needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    tls = files(home)
    if _current(tls, host):
        return tls
    tls.ca.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"recsys local stack CA ({home})"[:64])])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(_san(host), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(
        tls.key,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        0o600,
    )
    _write(tls.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(tls.ca, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    return tls


def server_copy(tls: TlsFiles, folder: Path, owner: str | None) -> tuple[Path, Path]:
    """The certificate and key copied into a server's own folder, owned by its account (servers refuse keys others
    can read, and may not be able to traverse the stack's home)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "server.pem", folder / "server.key"
    for source, target, mode in ((tls.cert, cert, 0o644), (tls.key, key, 0o600)):
        _write(target, source.read_bytes(), mode)
        if owner and os.geteuid() == 0:
            shutil.chown(target, owner, owner)
    return cert, key
