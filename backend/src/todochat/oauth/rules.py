"""What the authorization server accepts and keeps: redirect URIs it will send a browser to, and
the hash it stores of a secret (a code or a refresh token) instead of the secret."""

from __future__ import annotations

import hashlib
import ipaddress
from urllib.parse import urlsplit


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def acceptable_redirect_uri(uri: str) -> bool:
    """HTTPS, or HTTP on this machine (OAuth 2.1 and MCP: native clients listen on loopback); no
    fragment (RFC 6749 3.1.2), no credentials in the URL."""
    parts = urlsplit(uri)
    if parts.fragment or parts.username or parts.password or not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
