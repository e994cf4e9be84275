"""A stub outside authorization server (standing in for Better Auth) on 127.0.0.1: metadata,
registration, an /authorize that approves at once, PKCE-checked codes, refresh tokens, and
EdDSA access tokens published by JWKS. Only what the MCP SDK client needs, checked strictly
enough that a client that skips PKCE or sends the wrong verifier fails."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.security.support import SigningKey


class StubIssuer:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.key = SigningKey("EdDSA", "stub-key-1")
        self.codes: dict[str, dict[str, str]] = {}
        self.refresh_tokens: dict[str, str] = {}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any = None, location: str | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/oauth-authorization-server":
                    self._answer(200, issuer.metadata())
                elif url.path == "/jwks":
                    self._answer(200, {"keys": [issuer.key.jwk]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = secrets.token_urlsafe(16)
                    issuer.codes[code] = query
                    params = {"code": code, "state": query.get("state", "")}
                    self._answer(302, location=f"{query['redirect_uri']}?{urlencode(params)}")
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                if self.path == "/register":
                    metadata = json.loads(raw)
                    self._answer(201, {**metadata, "client_id": uuid.uuid4().hex})
                elif self.path == "/token":
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    status, body = issuer.token(form)
                    self._answer(status, body)
                else:
                    self._answer(404, {"error": "not_found"})

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "registration_endpoint": self.url + "/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
        }

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") == "authorization_code":
            request = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if request is None or challenge.decode() != request["code_challenge"]:
                return 400, {"error": "invalid_grant"}
            resource = request.get("resource", "")
        elif form.get("grant_type") == "refresh_token":
            resource = self.refresh_tokens.pop(form.get("refresh_token", ""), "")
            if not resource:
                return 400, {"error": "invalid_grant"}
        else:
            return 400, {"error": "unsupported_grant_type"}
        now = int(time.time())
        claims = {"sub": self.subject, "iss": self.url, "aud": resource, "iat": now}
        access = self.key.sign({**claims, "exp": now + 600, "jti": uuid.uuid4().hex})
        refresh = secrets.token_urlsafe(16)
        self.refresh_tokens[refresh] = resource
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 600}
        return 200, {**body, "refresh_token": refresh}

    def start(self) -> StubIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
