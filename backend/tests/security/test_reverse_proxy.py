"""The nginx configuration of docs/OPERATIONS.md (deploy/nginx/todochat.conf), tested: nginx runs
that file, with only the addresses, the certificate and (for the time-out test) the time-outs
replaced, in front of `todochat serve` on 127.0.0.1.

nginx comes from Debian (`nginx-light`). .ci/run installs it; when it is missing, this test
installs it with apt-get. Under CI=true a missing nginx fails the run; it is never skipped there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import User
from tests.faults import free_port
from tests.packages import debian_program
from tests.served import ServedApp

pytestmark = pytest.mark.slow

CONF = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "todochat.conf"
SHORT_TIMEOUT_S = 1


def _nginx() -> str:
    return debian_program("nginx", "nginx-light")


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{CONF.name} no longer has exactly one {old!r}"
    return text.replace(old, new)


@dataclass
class Proxied:
    nginx: subprocess.Popen[bytes]
    https_port: int
    http_port: int
    cert: Path

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, verify=ssl.create_default_context(cafile=self.cert)
        )

    def tls_socket(self) -> ssl.SSLSocket:
        context = ssl.create_default_context(cafile=self.cert)
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=10)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")


@contextlib.contextmanager
def _nginx_in_front(app: ServedApp, workdir: Path, *, timeouts_s: int | None) -> Iterator[Proxied]:
    nginx = _nginx()
    cert, key = _certificate(workdir)
    https_port, http_port = free_port(), free_port()
    site = CONF.read_text()
    site = _replace_once(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace_once(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace_once(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{app.port};")
    site = _replace_once(site, "/etc/ssl/todochat/fullchain.pem", str(cert))
    site = _replace_once(site, "/etc/ssl/todochat/privkey.pem", str(key))
    if timeouts_s is not None:
        for directive in ("client_header_timeout", "client_body_timeout"):
            site = _replace_once(site, f"{directive} 10s;", f"{directive} {timeouts_s}s;")
    (workdir / "todochat.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {workdir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # The main file an operator already has; the site file is included as documented.
    (workdir / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp}
    include {workdir}/todochat.conf;
}}
"""
    )
    log = workdir / "nginx.log"
    proc = subprocess.Popen(
        [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", "stderr"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        proxied = Proxied(proc, https_port, http_port, cert)
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "nginx did not start: " + log.read_text()
            with contextlib.suppress(httpx.TransportError), proxied.client() as client:
                if client.get("/health/live").status_code == 200:
                    break
            time.sleep(0.1)
        yield proxied
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = ServedApp(tmp_path_factory.mktemp("app"), database_url).start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def proxied(app: ServedApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    with _nginx_in_front(app, tmp_path_factory.mktemp("nginx"), timeouts_s=None) as running:
        yield running


def test_the_documented_nginx_passes_requests_and_refuses_oversize_headers(
    proxied: Proxied,
) -> None:
    user = User()
    with proxied.client() as client:
        r = client.get("/health/live")
        assert r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=63072000"
        # The app saw the request: it echoes the id nginx gave it.
        assert len(r.headers["x-request-id"]) == 32

        # A real request with a body and a header of a large token's size reaches the app.
        pad = {"X-Pad": "a" * 8192}
        r = client.post(
            f"/api/{user.id}/tasks", json={"title": "Via nginx"}, headers=user.headers | pad
        )
        assert r.status_code == 201, r.text
        r = client.get(f"/api/{user.id}/tasks", headers=user.headers)
        assert [t["title"] for t in r.json()] == ["Via nginx"]

        # Refused by nginx, before the app: one long header line, a head with many headers,
        # a body over MAX_BODY_BYTES.
        for headers in (
            {"X-Big": "a" * 20_000},
            {f"X-H{i}": "a" * 100 for i in range(2_000)},
        ):
            r = client.get("/health/live", headers=headers)
            assert r.status_code == 400, r.status_code
            assert "x-request-id" not in r.headers
        r = client.post(
            f"/api/{user.id}/tasks",
            content=b"a" * 1_100_000,
            headers=user.headers | {"Content-Type": "application/json"},
        )
        assert r.status_code == 413 and "x-request-id" not in r.headers
        # /metrics is not served under the public name.
        assert client.get("/metrics").status_code == 404
    r = httpx.get(f"http://127.0.0.1:{proxied.http_port}/health/live")
    assert r.status_code == 301
    assert r.headers["location"].startswith("https://")


def _closed_within(sock: ssl.SSLSocket, seconds: float, trickle: bytes) -> float:
    """Sends one byte of `trickle` at a time until nginx closes the connection."""
    started = time.monotonic()
    sock.settimeout(0.2)
    for byte in trickle:
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError):
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            break
    raise AssertionError(f"nginx kept the connection open for {seconds} s")


def test_the_documented_nginx_times_out_slow_heads_and_bodies(
    app: ServedApp, tmp_path: Path
) -> None:
    """The time-out directives where the file puts them, shortened to 1 s. nginx's body time-out
    runs between two reads (a body that trickles in is nginx's to hold, never the app's)."""
    with _nginx_in_front(app, tmp_path, timeouts_s=SHORT_TIMEOUT_S) as running:
        with running.tls_socket() as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            assert _closed_within(sock, 6, b"a" * 1000) < SHORT_TIMEOUT_S + 4
        user = User()
        with running.tls_socket() as sock:
            sock.sendall(
                f"POST /api/{user.id}/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {user.token}\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n".encode()
            )
            time.sleep(SHORT_TIMEOUT_S + 0.5)
            assert _closed_within(sock, 6, b" " * 1000) < 5
        with running.client() as client:
            assert client.get(f"/api/{user.id}/tasks", headers=user.headers).json() == []
