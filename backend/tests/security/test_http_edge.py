"""The HTTP edge under attack, over real sockets to `todochat serve` (issue 11, E1).

Before: an 8 MB header and 20,000 headers were served; four unfinished 25 MB headers raised the
server's memory by 143 MB; a head or a body sent one byte at a time, or nothing at all, held the
connection for ever. Now the head is at most HTTP_MAX_HEADER_BYTES and HTTP_MAX_HEADERS (431),
read within HTTP_HEADER_TIMEOUT_S, the body within HTTP_BODY_TIMEOUT_S (408), and the server
closes the connection. The server here runs with short time-outs; every refusal has a control
that passes.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import select
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.conftest import User
from tests.served import ServedApp
from todochat.config import Settings
from todochat.edge import LINGER_S, BoundedHttpToolsProtocol, EdgeLimits
from todochat.serve import uvicorn_options

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
# What a loaded machine may add to a time-out before the server acts on it.
SLACK_S = 3.0
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
MAX_HEADER_BYTES = DEFAULTS.http_max_header_bytes
MAX_HEADERS = DEFAULTS.http_max_headers


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = ServedApp(
        tmp_path_factory.mktemp("edge"),
        database_url,
        HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        HTTP_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    ).start()
    try:
        yield served
    finally:
        served.stop()


@dataclass
class Answer:
    """What the server sent on one connection, until it closed it or the wait ran out."""

    raw: bytes = b""
    closed: bool = False
    seconds: float = 0.0

    @property
    def status(self) -> int | None:
        line = self.raw.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[0].startswith(b"HTTP/") else None

    @property
    def body(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.raw else b""

    def header(self, name: str) -> str | None:
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        for line in head:
            key, _, value = line.partition(":")
            if key.strip().lower() == name:
                return value.strip()
        return None


def _connect(server: ServedApp) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _read_until_closed(sock: socket.socket, *, started: float, wait_s: float) -> Answer:
    answer = Answer()
    deadline = started + wait_s
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            answer.closed = True
            break
        answer.raw += chunk
    answer.seconds = time.monotonic() - started
    return answer


def _trickle(sock: socket.socket, head: bytes, *, every_s: float, wait_s: float) -> Answer:
    """Sends `head`, then one byte every `every_s` while the server lets it, reading what it
    answers, until it closes the connection or `wait_s` has passed."""
    started = time.monotonic()
    sock.sendall(head)
    answer = Answer()
    while time.monotonic() - started < wait_s:
        with contextlib.suppress(OSError):  # the server may have stopped reading
            sock.sendall(b"a")
        part = _read_until_closed(sock, started=time.monotonic(), wait_s=every_s)
        answer.raw += part.raw
        if part.closed:
            answer.closed = True
            break
    answer.seconds = time.monotonic() - started
    return answer


def _request(server: ServedApp, raw: bytes, *, wait_s: float = 10) -> Answer:
    with _connect(server) as sock:
        started = time.monotonic()
        sender = threading.Thread(target=_send_quietly, args=(sock, raw))
        sender.start()
        answer = _read_until_closed(sock, started=started, wait_s=wait_s)
        sender.join()
        return answer


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server closed the connection before taking it all
        sock.sendall(data)


def _get(*headers: bytes) -> bytes:
    lines = [b"GET /health/live HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _refused_with(answer: Answer, status: int) -> None:
    assert answer.status == status, answer.raw[:300]
    assert answer.header("connection") == "close"
    assert answer.header("content-type") == "application/json"
    assert answer.header("x-content-type-options") == "nosniff"
    detail = json.loads(answer.body)["detail"]
    assert isinstance(detail, str) and detail
    assert answer.closed, "the server kept the connection open"


def test_a_huge_header_is_431_and_the_connection_is_closed(server: ServedApp) -> None:
    answer = _request(server, _get(b"X-Big: " + b"a" * 8_000_000))
    _refused_with(answer, 431)
    assert str(MAX_HEADER_BYTES) in json.loads(answer.body)["detail"]
    # Control: a header as large as a token of MAX_TOKEN_BYTES passes.
    fits = b"X-Big: " + b"a" * DEFAULTS.max_token_bytes
    assert _request(server, _get(fits)).status == 200
    assert _request(server, _get()).status == 200  # and the server lives on


def test_twenty_thousand_headers_are_refused(server: ServedApp) -> None:
    many = [b"X-H%d: 1" % i for i in range(20_000)]
    _refused_with(_request(server, _get(*many)), 431)
    # Counted, not only measured: one field over the limit is 431, the limit itself passes
    # (Host and Connection are two of the fields).
    _refused_with(_request(server, _get(*many[: MAX_HEADERS - 1])), 431)
    assert _request(server, _get(*many[: MAX_HEADERS - 2])).status == 200


def test_unfinished_huge_headers_are_cut_at_the_limit_and_memory_stays_flat(
    server: ServedApp,
) -> None:
    _refused_with(_request(server, _get(b"X-Big: " + b"a" * 100_000)), 431)  # warm
    before = server.rss_bytes()
    results: list[tuple[Answer, int]] = []

    def attack() -> None:
        """A header that never ends, up to 25 MB, sent until the server answers."""
        with _connect(server) as sock:
            started = time.monotonic()
            sent = 0
            try:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
                while sent < 25_000_000 and not select.select([sock], [], [], 0)[0]:
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:
                pass
            results.append((_read_until_closed(sock, started=started, wait_s=20), sent))

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = server.rss_bytes() - before
    for answer, sent in results:
        _refused_with(answer, 431)
        # Answered near the limit, long before the end (socket buffers hold a few MB).
        assert sent < 12_000_000, sent
    # Before: +143 MB for the same four connections.
    assert grown < 20_000_000, f"server memory grew by {grown} bytes"


def test_a_malformed_request_is_a_json_400_and_the_connection_is_closed(
    server: ServedApp,
) -> None:
    for raw in (b"NOT HTTP\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"):
        _refused_with(_request(server, raw), 400)


def test_a_slowloris_head_is_408_and_closed_within_the_header_timeout(server: ServedApp) -> None:
    with _connect(server) as sock:
        answer = _trickle(
            sock,
            b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            every_s=0.2,
            wait_s=HEADER_TIMEOUT_S + SLACK_S + 5,
        )
        _refused_with(answer, 408)
        assert HEADER_TIMEOUT_S - 0.1 <= answer.seconds < HEADER_TIMEOUT_S + SLACK_S
        # After a short drain the server lets go of the socket: writes are then reset.
        deadline = time.monotonic() + LINGER_S + SLACK_S
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                sock.sendall(b"a")
                time.sleep(0.1)


def test_a_connection_that_never_sends_is_closed_within_the_header_timeout(
    server: ServedApp,
) -> None:
    with _connect(server) as sock:
        answer = _read_until_closed(
            sock, started=time.monotonic(), wait_s=HEADER_TIMEOUT_S + SLACK_S
        )
    assert answer.closed and answer.raw == b""  # closed quietly: there was no request


def test_a_slow_body_is_408_and_closed_within_the_body_timeout(server: ServedApp) -> None:
    user = User()
    head = (
        f"POST /api/{user.id}/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {user.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    with _connect(server) as sock:
        answer = _trickle(sock, head, every_s=0.2, wait_s=BODY_TIMEOUT_S + SLACK_S + 5)
    _refused_with(answer, 408)
    assert BODY_TIMEOUT_S - 0.1 <= answer.seconds < BODY_TIMEOUT_S + SLACK_S
    # The app never saw a whole body: nothing was written.
    r = httpx.get(f"{server.base_url}/api/{user.id}/tasks", headers=user.headers)
    assert r.status_code == 200 and r.json() == []


def test_requests_that_keep_to_the_limits_pass(server: ServedApp) -> None:
    """A head and a body sent in parts within their time-outs, and a kept-alive connection idle
    for longer than the header time-out (keep-alive governs idleness), all work."""
    user = User()
    body = json.dumps({"title": "Sent in parts"}).encode()
    head = (
        f"POST /api/{user.id}/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {user.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(server) as sock:
        for part in (head[:20], head[20:], body[:5], body[5:]):
            sock.sendall(part)
            time.sleep(0.2)
        first = _read_response(sock)
        assert first.status == 201, first.raw
        time.sleep(HEADER_TIMEOUT_S + 0.5)
        sock.sendall(
            f"GET /api/{user.id}/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {user.token}\r\n\r\n".encode()
        )
        second = _read_response(sock)
    assert second.status == 200, second.raw
    assert [t["title"] for t in json.loads(second.body)] == ["Sent in parts"]


def _read_response(sock: socket.socket) -> Answer:
    """One response with a Content-Length, on a connection that stays open."""
    answer = Answer()
    while b"\r\n\r\n" not in answer.raw:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        answer.raw += chunk
    length = int(answer.header("content-length") or 0)
    while len(answer.body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        answer.raw += chunk
    return answer


def test_the_edge_runs_on_the_pinned_uvicorn() -> None:
    """edge.py extends uvicorn's httptools protocol, not a public API: uvicorn is pinned, and a
    new version must be checked against edge.py before the pin moves."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("uvicorn")]
    assert pins == [f"uvicorn[standard]=={uvicorn.__version__}"]
    limits = EdgeLimits.from_settings(DEFAULTS)
    options = uvicorn_options(host="127.0.0.1", port=8000, shutdown_timeout_s=5, limits=limits)
    # The protocol reaches spawned workers (`--workers N`) through pickled options.
    http = pickle.loads(pickle.dumps(options))["http"]
    assert http.func is BoundedHttpToolsProtocol and http.keywords == {"limits": limits}
    assert options["timeout_keep_alive"] == DEFAULTS.http_keepalive_timeout_s
