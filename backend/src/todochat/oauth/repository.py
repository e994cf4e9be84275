"""Queries of the OAuth authorization server. A code or refresh token is spent by one
conditional UPDATE, so that of two concurrent uses exactly one wins, on either engine."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from todochat.logs import timed
from todochat.models import OAuthClient, OAuthCode, OAuthGrant, OAuthRefreshToken


@timed("repo.oauth.get_client", level=logging.DEBUG)
async def get_client(session: AsyncSession, *, client_id: str) -> OAuthClient | None:
    return await session.get(OAuthClient, client_id)


@timed("repo.oauth.add", level=logging.DEBUG)
async def add(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)
    await session.flush()


@timed("repo.oauth.get_grant", level=logging.DEBUG)
async def get_live_grant(session: AsyncSession, *, grant_id: str) -> OAuthGrant | None:
    grant = await session.get(OAuthGrant, grant_id)
    return grant if grant is not None and grant.revoked_at is None else None


@timed("repo.oauth.revoke_grant", level=logging.DEBUG)
async def revoke_grant(session: AsyncSession, *, grant_id: str, now: datetime) -> None:
    await session.execute(
        sa.update(OAuthGrant)
        .where(col(OAuthGrant.id) == grant_id, col(OAuthGrant.revoked_at).is_(None))
        .values(revoked_at=now)
    )


@timed("repo.oauth.get_code", level=logging.DEBUG)
async def get_code(session: AsyncSession, *, code_hash: str) -> OAuthCode | None:
    return await session.get(OAuthCode, code_hash)


@timed("repo.oauth.spend_code", level=logging.DEBUG)
async def spend_code(session: AsyncSession, *, code_hash: str, now: datetime) -> bool:
    """Mark the code used, if it is unused and unexpired; False when another use came first."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        sa.update(OAuthCode)
        .where(
            col(OAuthCode.code_hash) == code_hash,
            col(OAuthCode.used_at).is_(None),
            col(OAuthCode.expires_at) > now,
        )
        .values(used_at=now)
    )
    return result.rowcount == 1


@timed("repo.oauth.get_refresh_token", level=logging.DEBUG)
async def get_refresh_token(session: AsyncSession, *, token_hash: str) -> OAuthRefreshToken | None:
    return await session.get(OAuthRefreshToken, token_hash)


@timed("repo.oauth.spend_refresh_token", level=logging.DEBUG)
async def spend_refresh_token(session: AsyncSession, *, token_hash: str, now: datetime) -> bool:
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        sa.update(OAuthRefreshToken)
        .where(
            col(OAuthRefreshToken.token_hash) == token_hash,
            col(OAuthRefreshToken.used_at).is_(None),
            col(OAuthRefreshToken.expires_at) > now,
        )
        .values(used_at=now)
    )
    return result.rowcount == 1


@timed("repo.oauth.purge", level=logging.DEBUG)
async def purge_expired(session: AsyncSession, *, now: datetime) -> None:
    """Codes and refresh tokens past their expiry are of no use to anyone."""
    await session.execute(sa.delete(OAuthCode).where(col(OAuthCode.expires_at) < now))
    expired = col(OAuthRefreshToken.expires_at) < now
    await session.execute(sa.delete(OAuthRefreshToken).where(expired))
