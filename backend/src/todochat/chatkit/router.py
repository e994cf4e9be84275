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
from todochat.errors import error_responses
from todochat.ratelimit import BearerChatBudget

router = APIRouter(tags=["chatkit"])


@router.post(
    "/chatkit",
    responses={
        200: {
            "content": {"application/json": {}, service.MEDIA_TYPE: {}},
            "description": "JSON, or the turn's thread events as Server-Sent Events",
        },
        **error_responses(400, 401, 404, 413, 422, 429, 503),
    },
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A ChatKit request (`{type, params}`), as ChatKit's client sends it.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
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
