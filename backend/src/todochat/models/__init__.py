"""Tables only. Importing this package registers every table on `SQLModel.metadata`."""

from todochat.models.base import metadata, utcnow
from todochat.models.conversation import Conversation
from todochat.models.idempotency import IdempotencyRecord
from todochat.models.message import Message
from todochat.models.oauth import OAuthClient, OAuthCode, OAuthGrant, OAuthRefreshToken
from todochat.models.task import Task
from todochat.models.user import User

__all__ = [
    "Conversation",
    "IdempotencyRecord",
    "Message",
    "OAuthClient",
    "OAuthCode",
    "OAuthGrant",
    "OAuthRefreshToken",
    "Task",
    "User",
    "metadata",
    "utcnow",
]
