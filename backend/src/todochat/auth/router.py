from __future__ import annotations

from fastapi import APIRouter, status

from todochat.auth import service
from todochat.auth.schemas import SignIn, SignUp, TokenResponse
from todochat.config import SettingsDep
from todochat.db import DatabaseDep
from todochat.errors import error_responses
from todochat.ratelimit import AuthRateLimit

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409, 413, 422, 429, 503),
    dependencies=[AuthRateLimit],
)
async def sign_up(body: SignUp, db: DatabaseDep, settings: SettingsDep) -> TokenResponse:
    """Create an account and return an access token."""
    return await service.sign_up(db=db, settings=settings, data=body)


@router.post(
    "/signin",
    responses=error_responses(401, 413, 422, 429, 503),
    dependencies=[AuthRateLimit],
)
async def sign_in(body: SignIn, db: DatabaseDep, settings: SettingsDep) -> TokenResponse:
    """Exchange email and password for an access token."""
    return await service.sign_in(db=db, settings=settings, data=body)
