"""The OAuth authorization server's state (issue 18): registered clients, grants, single-use
authorization codes and rotating refresh tokens. Codes and refresh tokens are stored as SHA-256
hashes: a copy of the table hands out nothing usable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from todochat.models.base import JSONType, UTCDateTime, created_at_column, utcnow


class OAuthClient(SQLModel, table=True):
    """A client registered through dynamic client registration (RFC 7591), as registered."""

    __tablename__ = "oauth_clients"

    client_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    # The registration as the SDK's `OAuthClientInformationFull` (its secret included: the
    # SDK's client authentication compares the secret itself).
    info: Any = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=created_at_column())


class OAuthGrant(SQLModel, table=True):
    """One user's consent to one client: the family of its code, refresh and access tokens.
    Revoking it (revocation, or a code or refresh token used twice) ends them all."""

    __tablename__ = "oauth_grants"

    id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    client_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, index=True))
    resource: str = Field(sa_column=sa.Column(sa.String(2048), nullable=False))
    scopes: str = Field(sa_column=sa.Column(sa.String(1024), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=created_at_column())
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class OAuthCode(SQLModel, table=True):
    __tablename__ = "oauth_codes"

    code_hash: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    grant_id: str = Field(
        sa_column=sa.Column(
            sa.String(64), sa.ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False
        )
    )
    redirect_uri: str = Field(sa_column=sa.Column(sa.String(2048), nullable=False))
    code_challenge: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class OAuthRefreshToken(SQLModel, table=True):
    __tablename__ = "oauth_refresh_tokens"

    token_hash: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    grant_id: str = Field(
        sa_column=sa.Column(
            sa.String(64),
            sa.ForeignKey("oauth_grants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # Set when it was exchanged for the next one: presenting it again is a replay.
    used_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
