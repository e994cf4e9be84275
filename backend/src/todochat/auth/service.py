from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.auth import repository
from todochat.auth.passwords import hash_password, verify_password
from todochat.auth.schemas import SignIn, SignUp, TokenResponse, UserRead
from todochat.auth.tokens import issue_token
from todochat.config import Settings
from todochat.db import Database
from todochat.errors import Conflict, InvalidCredentials
from todochat.logs import timed
from todochat.models import User, utcnow


class EmailTaken(Conflict):
    detail = "An account with this email already exists"


def _token_response(settings: Settings, user: User) -> TokenResponse:
    token, ttl = issue_token(settings=settings, user_id=user.id, email=user.email)
    return TokenResponse(
        access_token=token,
        expires_in=ttl,
        user=UserRead(id=user.id, email=user.email, name=user.name),
    )


@timed("auth.sign_up")
async def sign_up(*, db: Database, settings: Settings, data: SignUp) -> TokenResponse:
    email = data.email.lower()
    password_hash = await hash_password(data.password)
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        name=data.name or None,
        password_hash=password_hash,
        created_at=utcnow(),
    )

    async def work(session: AsyncSession) -> None:
        if await repository.get_by_email(session, email=email) is not None:
            raise EmailTaken()
        await repository.add(session, user=user)

    try:
        await db.run(work)
    except IntegrityError as exc:  # two sign-ups with one email racing past the check
        raise EmailTaken() from exc
    return _token_response(settings, user)


@timed("auth.sign_in")
async def sign_in(*, db: Database, settings: Settings, data: SignIn) -> TokenResponse:
    async def work(session: AsyncSession) -> User | None:
        return await repository.get_by_email(session, email=data.email.lower())

    user = await db.run(work)
    # Always verify (against a dummy hash when the user is unknown): same answer, same time.
    ok = await verify_password(data.password, user.password_hash if user else None)
    if user is None or not ok:
        raise InvalidCredentials()
    return _token_response(settings, user)
