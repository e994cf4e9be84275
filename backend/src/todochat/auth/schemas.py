from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from todochat.schemas import Printable

Email = Annotated[EmailStr, Field(max_length=320), Printable()]
Password = Annotated[str, Field(min_length=8, max_length=128), Printable()]


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), Printable()] | None
    ) = None


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    # Sign-in does not enforce the minimum: a wrong password is 401, not a hint about rules.
    password: Annotated[str, Field(min_length=1, max_length=128), Printable()]


class UserRead(BaseModel):
    id: str
    email: str
    name: str | None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserRead
