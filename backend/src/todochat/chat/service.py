"""One stateless chat turn: three short units of work around the model, none held while it
thinks. (1) check the conversation, read the last messages, store the user's message;
(2) the agent runs, each tool call in its own unit of work; (3) store the reply with its tool
calls. Any instance can serve any turn; nothing lives in memory between turns.
"""

from __future__ import annotations

import json
import logging
import time

from agents import TResponseInputItem

from todochat.agent.runner import AgentRuntime, ModelFailure
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversation_service
from todochat.conversations.schemas import MessageRead, ToolCall
from todochat.db import Database
from todochat.errors import ModelUnavailable
from todochat.logs import bind

log = logging.getLogger("todochat.chat")


def history_as_input(history: list[MessageRead]) -> list[TResponseInputItem]:
    """Stored messages as model input; earlier tool calls stay visible, paired by call id."""
    items: list[TResponseInputItem] = []
    for message in history:
        if message.role == "user":
            items.append({"role": "user", "content": message.content})
            continue
        for call in message.tool_calls or []:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": json.dumps(call.arguments),
                }
            )
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call.id,
                    "output": json.dumps(call.result),
                }
            )
        items.append({"role": "assistant", "content": message.content})
    return items


async def chat_turn(
    *,
    db: Database,
    runtime: AgentRuntime,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
) -> ChatResponse:
    started = time.perf_counter()
    turn = await conversation_service.start_turn(
        db=db,
        user_id=user_id,
        conversation_id=request.conversation_id,
        message=request.message,
        history_limit=history_limit,
    )
    bind(conversation_id=turn.conversation_id)
    try:
        result = await runtime.run_turn(
            user_id=user_id, history=history_as_input(turn.history), message=request.message
        )
    except ModelFailure as failure:
        log.error(
            "model upstream failed",
            extra={
                "operation": "chat.model",
                "error_type": failure.reason,
                "tool_calls": len(failure.tool_calls),
            },
        )
        # Keep the conversation consistent: what the tools already did is recorded with it.
        await conversation_service.finish_turn(
            db=db,
            user_id=user_id,
            conversation_id=turn.conversation_id,
            reply=ModelUnavailable.detail,
            tool_calls=failure.tool_calls,
        )
        raise ModelUnavailable() from failure
    await conversation_service.finish_turn(
        db=db,
        user_id=user_id,
        conversation_id=turn.conversation_id,
        reply=result.reply,
        tool_calls=result.tool_calls,
    )
    total_ms = (time.perf_counter() - started) * 1000
    log.info(
        "chat turn",
        extra={
            "operation": "chat.turn",
            "duration_ms": round(total_ms, 2),
            "model_ms": round(result.model_ms, 2),
            "tool_ms": round(result.tool_ms, 2),
            "model_calls": result.model_calls,
            "tool_calls": len(result.tool_calls),
        },
    )
    return ChatResponse(
        conversation_id=turn.conversation_id,
        response=result.reply,
        tool_calls=[ToolCall.model_validate(c) for c in result.tool_calls],
    )
