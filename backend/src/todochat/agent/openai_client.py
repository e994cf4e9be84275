"""The OpenAI client of the agent, without the client's per-call request transform.

`AsyncCompletions.create` passes every request body through `async_maybe_transform`, which
walks the messages and tools against the SDK's TypedDict unions in pure Python, trying each
union member for each message. Profiled under the `overhead` benchmark it was 18% of the
server's CPU: about 0.16 ms per message of history, so 5 ms for a 30-item conversation, on
each of a turn's model calls. For the bodies the Agents SDK sends (plain JSON: dicts, lists,
strings, numbers) the transform only drops omitted arguments, which is what `create` does
here before posting with the client's `_post`, streamed or not. These are private APIs of the
pinned minor release (see decision P4, and `python -m bench.openai_transform`).
tests/chat/test_chat_openai.py checks that the body sent is the one the transform would produce.

With `string_content` (OPENAI_STRING_CONTENT, M2 in specs/decisions.md) every message's content
is sent as a plain string, for servers that validate it as one (llama-cpp-python, llama.cpp's
server, sglang): an assistant message beside tool calls says `""` instead of `null`, and a tool
output or any other content given as a list of text parts is sent as their joined text.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

import pydantic
from openai import AsyncOpenAI, AsyncStream
from openai._base_client import make_request_options
from openai._types import NOT_GIVEN, ResponseT
from openai._utils import is_given
from openai.lib._chat_completion_resources import validate_response_format
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from todochat.lanes import Aside, pass_lane

if TYPE_CHECKING:
    import httpx2

_REQUEST_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")


def request_body(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a chat completion request: the given arguments, omitted ones left out."""
    return {k: v for k, v in params.items() if k not in _REQUEST_OPTIONS and is_given(v)}


def as_string_contents(messages: Any) -> Any:
    """The messages with every content a string (see the module's docstring)."""
    if not isinstance(messages, list):
        return messages
    converted: list[Any] = []
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            if content is None and message.get("role") == "assistant":
                message = {**message, "content": ""}
            elif isinstance(content, list):
                text = "".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
                message = {**message, "content": text}
        converted.append(message)
    return converted


class _Completions(AsyncCompletions):
    async def create(self, **params: Any) -> Any:  # type: ignore[override]
        client = self._client
        if isinstance(client, AgentOpenAI) and client.string_content and "messages" in params:
            params = {**params, "messages": as_string_contents(params["messages"])}
        validate_response_format(params.get("response_format", NOT_GIVEN))
        # The wait for the model is not the worker's work: the turn's lane goes to the next
        # turn meanwhile (lanes.py). A streamed answer takes it back once read to its end.
        step = Aside()
        try:
            answer = await self._send(params)
        except Exception:  # not when cancelled: the turn's end gives back what it holds
            await step.resume()
            raise
        if isinstance(answer, AsyncStream):
            return _LaneBackAtEnd(answer, step)
        await step.resume()
        return answer

    async def _send(self, params: dict[str, Any]) -> Any:
        return await self._post(
            "/chat/completions",
            body=request_body(params),
            options=make_request_options(
                extra_headers=params.get("extra_headers"),
                extra_query=params.get("extra_query"),
                extra_body=params.get("extra_body"),
                timeout=params.get("timeout", NOT_GIVEN),
                security={"bearer_auth": True},
            ),
            cast_to=ChatCompletion,
            stream=bool(params.get("stream")),
            stream_cls=AsyncStream[ChatCompletionChunk],
        )


class _LaneBackAtEnd:
    """A streamed answer that takes its turn's lane back when it has been read to its end, has
    failed or is closed. The chunks are read without a lane; once its text has begun, each
    further piece of text lets the turns queued for a lane go first (`pass_lane`, P21)."""

    def __init__(self, stream: AsyncStream[ChatCompletionChunk], step: Aside) -> None:
        self._stream = stream
        self._step = step
        self._text_begun = False

    @property
    def response(self) -> httpx2.Response:
        return self._stream.response

    def __aiter__(self) -> _LaneBackAtEnd:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        try:
            chunk = await self._stream.__anext__()
        except Exception:  # StopAsyncIteration at the end, or a failure; not when cancelled
            await self._step.resume()
            raise
        if chunk.choices and chunk.choices[0].delta.content:
            if self._text_begun:
                await pass_lane()
            self._text_begun = True
        return chunk

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            await self._step.resume()


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class AgentOpenAI(AsyncOpenAI):
    """`AsyncOpenAI` with the fast `chat.completions.create` above, and answers read with
    pydantic's validator first."""

    def __init__(self, *, string_content: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.string_content = string_content

    def _process_response_data(
        self, *, data: object, cast_to: type[ResponseT], response: httpx2.Response
    ) -> ResponseT:
        # The client builds every answer, and every chunk of a streamed one, with
        # `construct_type`, a pure-Python walk of the model's fields: 62 us a chunk, against 3 us
        # for pydantic's compiled validator, which gives the same model but for pydantic's
        # coercions (a number sent as a string becomes a number) (P17). An answer the validator
        # refuses (a server's own value for a field) is built as the client builds it.
        if cast_to is ChatCompletionChunk or cast_to is ChatCompletion:
            model = cast(type[pydantic.BaseModel], cast_to)
            try:
                return cast(ResponseT, model.model_validate(data))
            except pydantic.ValidationError:
                pass
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)
