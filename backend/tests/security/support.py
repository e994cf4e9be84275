"""What the attack suite shares: database snapshots, forged tokens, a JWKS server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from todochat.models import metadata

OWNED_TABLES = ("tasks", "conversations", "messages")


async def snapshot(app: FastAPI, *user_ids: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the given users own, read straight from the database (not through the API)."""
    engine = app.state.database.engine
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for name in OWNED_TABLES:
            table = metadata.tables[name]
            result = await conn.execute(
                sa.select(table).where(table.c.user_id.in_(user_ids)).order_by(table.c.id)
            )
            rows[name] = [tuple(r) for r in result]
    return rows


async def user_row(app: FastAPI, email: str) -> dict[str, Any] | None:
    table = metadata.tables["users"]
    async with app.state.database.engine.connect() as conn:
        result = await conn.execute(sa.select(table).where(table.c.email == email))
        row = result.mappings().first()
    return dict(row) if row else None


# --- tokens ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode())


def hmac_token(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """HS256 signed by hand: PyJWT refuses PEM keys as HMAC secrets, attackers do not."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims(sub: str, *, ttl: int = 3600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + ttl, **extra}


class SigningKey:
    """An asymmetric key pair with its public JWK, as an issuer like Better Auth holds it."""

    def __init__(self, kind: str, kid: str) -> None:
        self.kid = kid
        self.private: Any
        if kind == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif kind == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif kind == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            raise ValueError(kind)
        self.alg = kind
        self.jwk: dict[str, Any] = {**jwk, "kid": kid, "alg": kind, "use": "sig"}

    def sign(self, payload: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            payload, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class JWKSServer:
    """A real HTTP server on 127.0.0.1 publishing `keys` at /jwks; counts the fetches."""

    def __init__(self, keys: list[SigningKey] | None = None) -> None:
        self.keys = list(keys or [])
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps({"keys": [k.jwk for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks"

    def start(self) -> JWKSServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
