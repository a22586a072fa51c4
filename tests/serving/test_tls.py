"""`caselens serve --ssl-certfile/--ssl-keyfile` serves HTTPS, and then the session cookie is Secure.

The server is a real subprocess with a self-signed certificate made here (``cryptography`` when it is
installed, else the ``openssl`` command).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.serving.ports import free_port
from tests.serving.test_workers import running, serve_environment

pytestmark = pytest.mark.slow


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, PEM files in ``folder``."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        request = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        files = ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"]
        names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run([*request, *files, *names], check=True, capture_output=True)
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


def test_serve_over_tls_sends_a_secure_session_cookie_and_no_server_banner(world, tmp_path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    command = ["serve", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    with (
        running(command, serve_environment(world, tmp_path), url, tmp_path, verify=trusted),
        httpx.Client(base_url=url, verify=trusted, timeout=10) as client,
    ):
        form = client.get("/login")
        assert "server" not in form.headers
        assert form.headers["strict-transport-security"].startswith("max-age=")
        assert "secure" in form.headers["set-cookie"].lower()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        data = {"key": world.keys["coder"], "next": "/", "csrf_token": token}
        answer = client.post("/login", data=data, headers={"Origin": url}, follow_redirects=False)
        assert answer.status_code == 303
        session = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("caselens_session="))
        flags = {part.strip().lower() for part in session.split(";")}
        assert {"secure", "httponly", "samesite=strict"} <= flags
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # TLS only
