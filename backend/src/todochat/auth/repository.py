from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from todochat.logs import timed
from todochat.models import User


@timed("repo.auth.get_by_email", level=logging.DEBUG)
async def get_by_email(session: AsyncSession, *, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


@timed("repo.auth.add", level=logging.DEBUG)
async def add(session: AsyncSession, *, user: User) -> User:
    session.add(user)
    await session.flush()
    return user
