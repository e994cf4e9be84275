"""agent/openai_client.py: answers read with pydantic's validator are the models the openai
client would build, and what the validator refuses is built as the client builds it."""

from __future__ import annotations

import inspect
from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from todochat.agent.openai_client import AgentOpenAI

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "fake-model",
    "choices": [{"index": 0, "delta": {"content": " milk"}, "finish_reason": None}],
}
COMPLETION = {
    "id": "chatcmpl-2",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "fake-model",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add_task", "arguments": '{"title": "Buy milk"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    "a_field_of_this_server": {"kept": True},
}
# What local servers send that the published types do not allow.
ODD_CHUNK = {**CHUNK, "object": "text_completion"}
ODD_COMPLETION = {
    **COMPLETION,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "eos"}
    ],
}


@pytest.fixture
def client() -> AgentOpenAI:
    return AgentOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")


def read(client: AsyncOpenAI, data: dict[str, Any], cast_to: type[Any]) -> Any:
    response = httpx2.Response(200, request=httpx2.Request("POST", "http://127.0.0.1:9/v1"))
    return client._process_response_data(data=data, cast_to=cast_to, response=response)


@pytest.mark.parametrize(
    ("data", "cast_to"),
    [
        (CHUNK, ChatCompletionChunk),
        (COMPLETION, ChatCompletion),
        (ODD_CHUNK, ChatCompletionChunk),
        (ODD_COMPLETION, ChatCompletion),
    ],
)
def test_an_answer_reads_as_the_client_would_build_it(
    client: AgentOpenAI, data: dict[str, Any], cast_to: type[Any]
) -> None:
    ours = read(client, data, cast_to)
    theirs = construct_type(type_=cast_to, value=data)
    assert type(ours) is cast_to
    assert ours == theirs
    assert ours.model_dump() == theirs.model_dump()
    assert read(AsyncOpenAI(api_key="sk-test"), data, cast_to) == ours


def test_a_field_the_types_do_not_know_is_kept(client: AgentOpenAI) -> None:
    completion = read(client, COMPLETION, ChatCompletion)
    assert completion.model_extra == {"a_field_of_this_server": {"kept": True}}
    odd = read(client, ODD_COMPLETION, ChatCompletion)
    assert odd.choices[0].finish_reason == "eos"


def test_the_client_still_reads_answers_and_chunks_through_the_replaced_method() -> None:
    """Fails when an openai release stops calling `_process_response_data`: look before raising
    the pin."""
    from openai import _response, _streaming

    assert inspect.getsource(_response).count("self._client._process_response_data(") >= 2
    assert inspect.getsource(_streaming).count("= self._client._process_response_data") >= 2
    assert list(inspect.signature(AsyncOpenAI._process_response_data).parameters) == [
        "self",
        "data",
        "cast_to",
        "response",
    ]
