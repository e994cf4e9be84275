from __future__ import annotations

from chatkit.server import StreamingResult
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from todochat.auth.dependencies import Authenticated
from todochat.chat.router import RuntimeDep
from todochat.chatkit import service
from todochat.chatkit.schemas import RequestContext
from todochat.config import SettingsDep
from todochat.db import DatabaseDep
from todochat.ratelimit import BearerChatBudget

router = APIRouter(tags=["chatkit"])


# Not in the OpenAPI document, like /mcp: the request and event types are the ChatKit protocol's
# (the `openai-chatkit` package's), a union this document could only restate partly.
@router.post("/chatkit", include_in_schema=False)
async def chatkit(
    request: Request,
    user: Authenticated,
    budget: BearerChatBudget,
    db: DatabaseDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> Response:
    """The OpenAI ChatKit protocol: point a ChatKit frontend's `api.url` here.

    Threads are the user's conversations and their items the messages, the same ones as
    `GET /api/{user_id}/conversations`; a turn is the chat route's turn. Attachments, widget
    actions, client tools, feedback and dictation are answered 400 (not supported).
    """
    server = service.TodoChatKitServer(db=db, runtime=runtime, settings=settings)
    context = RequestContext(user_id=user.id, budget=budget)
    result = await server.handle(await request.body(), context)
    if isinstance(result, StreamingResult):
        return StreamingResponse(result, media_type=service.MEDIA_TYPE, headers=service.HEADERS)
    return Response(content=result.json, media_type="application/json")
