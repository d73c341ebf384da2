"""The CA bundle the Lambdas verify the vector DB with: a configured file, or the RDS bundle downloaded at build."""

from __future__ import annotations

import http.server
import threading
import zipfile

import pytest

from recsys.streaming.packaging import CA_ARCNAME, PackagingError, _add_file, ca_bundle, check_ca_bundle
from recsys_local import tls


@pytest.fixture
def pem(tmp_path):
    return tls.ensure(tmp_path / "stack", "127.0.0.1").ca


@pytest.fixture
def served(pem):
    """An HTTP server standing in for truststore.pki.rds.amazonaws.com; yields (url template, request log)."""
    requests: list[str] = []
    bodies = {"/us-east-1/us-east-1-bundle.pem": pem.read_bytes(), "/broken.pem": b"<html>not a bundle</html>"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", requests
    server.shutdown()


def test_a_configured_bundle_is_used_as_it_is(tmp_path, pem):
    assert ca_bundle(tmp_path / "cache", "us-east-1", {"VECTOR_DB_CA_BUNDLE": str(pem)}) == pem


def test_a_configured_bundle_that_is_missing_or_not_pem_is_named(tmp_path):
    with pytest.raises(PackagingError, match=r"VECTOR_DB_CA_BUNDLE=/no/such.pem does not exist"):
        ca_bundle(tmp_path, "us-east-1", {"VECTOR_DB_CA_BUNDLE": "/no/such.pem"})
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(PackagingError, match=rf"VECTOR_DB_CA_BUNDLE={junk} is not a PEM CA bundle"):
        ca_bundle(tmp_path, "us-east-1", {"VECTOR_DB_CA_BUNDLE": str(junk)})


def test_without_one_the_regions_rds_bundle_is_downloaded_once_and_cached(tmp_path, served, pem):
    base, requests = served
    env = {"RDS_CA_BUNDLE_URL": base + "/us-east-1/us-east-1-bundle.pem"}
    first = ca_bundle(tmp_path, "us-east-1", env)
    assert first.read_bytes() == pem.read_bytes()
    assert ca_bundle(tmp_path, "us-east-1", env) == first
    assert requests == ["/us-east-1/us-east-1-bundle.pem"]  # the second build used the cache


def test_a_download_that_fails_or_is_not_a_bundle_says_what_to_do(tmp_path, served):
    base, _ = served
    with pytest.raises(PackagingError, match=r"could not download the RDS CA bundle .*set VECTOR_DB_CA_BUNDLE"):
        ca_bundle(tmp_path, "us-east-1", {"RDS_CA_BUNDLE_URL": base + "/missing.pem"})
    with pytest.raises(PackagingError, match=r"broken.pem is not a PEM CA bundle"):
        ca_bundle(tmp_path, "us-east-1", {"RDS_CA_BUNDLE_URL": base + "/broken.pem"})
    assert not list(tmp_path.glob("rds-ca-*"))  # nothing cached


def test_the_stack_ca_is_one_certificate_and_lands_where_the_lambdas_look(tmp_path, pem):
    assert check_ca_bundle(pem.read_bytes(), "ca") == 1
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as archive:
        _add_file(archive, pem, CA_ARCNAME)
    with zipfile.ZipFile(tmp_path / "z.zip") as archive:
        assert archive.read(CA_ARCNAME) == pem.read_bytes()


def test_the_server_certificate_names_the_host_and_is_renewed_when_the_host_changes(tmp_path):
    first = tls.ensure(tmp_path, "127.0.0.1")
    cert = first.cert.read_bytes()
    assert tls.ensure(tmp_path, "127.0.0.1").cert.read_bytes() == cert  # kept while valid
    assert oct(first.key.stat().st_mode & 0o777) == "0o600"
    tls.ensure(tmp_path, "10.1.2.3")
    assert first.cert.read_bytes() != cert
    from cryptography import x509

    san = x509.load_pem_x509_certificate(first.cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert {str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)} == {"10.1.2.3", "127.0.0.1"}
