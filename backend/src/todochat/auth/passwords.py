"""Password hashing with argon2id (pwdlib). Hashing runs in a thread: it is CPU-bound by design."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing-equalisation")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    target = password_hash or _DUMMY_HASH
    ok = await asyncio.to_thread(_hasher.verify, password, target)
    return bool(ok) and password_hash is not None
