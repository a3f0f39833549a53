"""Chat completions against any OpenAI-compatible server, bounded, retried and cached.

    client = ChatClient("http://127.0.0.1:8000/v1", "smollm2", api_key_env="TEACHER_KEY", cache=store)
    replies = client.complete(requests)     # list[ChatRequest] -> list[ChatReply], same order

Requests run concurrently (at most `max_concurrency` in flight) on the `openai` async
client, which itself retries 429s, 5xx, timeouts and dropped connections with backoff
(`max_retries`). A reply that does not parse into its model is asked again with another
seed, up to `parse_retries` times, then given up as an error that keeps the raw text.

Each request carries its reply's JSON schema for guided decoding (`structured`). Under
`auto`, a server that refuses it (a 400 naming response_format, json_schema, ...) is
asked the same in plain JSON, which the prompts ask for too, and no schema is sent
again: at most the requests in flight then (`max_concurrency`) are refused, and a
refusal costs no retry. Under `json_schema` a refusal stops the run (`TeacherRefused`).

Every call is recorded in the run's store (`teacher_calls`, through the store actor on
Ray): usable replies by a key over (model, template, messages, schema, sampling), so a
resumed or repeated run sends no request twice; failures with their error and raw text,
never used as answers. The API key is read from the environment variable named by
`api_key_env` in this process and is never stored, logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Sequence
from typing import Any

from sgi.skills.interfaces import TeacherOutputError, TeacherRefused
from sgi.skills.llm_teacher import ChatReply, ChatRequest
from sgi.skills.records import TeacherCall

FLUSH_EVERY = 16  # calls buffered before they are written to the store
_SCHEMA_REFUSED = ("response_format", "json_schema", "guided", "structured")


class OpenAISender:
    """One chat completion over HTTP per call, on the `openai` async client (which retries
    429s, 5xx, timeouts and dropped connections with backoff, `max_retries` times)."""

    def __init__(self, base_url: str, *, api_key_env: str | None = None, timeout_s: float = 60.0,
                 max_retries: int = 3):
        if api_key_env and not os.environ.get(api_key_env):
            raise ValueError(f"teacher.llm.api_key_env names {api_key_env}, which is not set in the environment")
        import openai

        self.errors: tuple[type[Exception], ...] = (openai.APIError,)
        self.refusal = openai.BadRequestError
        self.base_url, self.api_key_env, self.timeout_s, self.max_retries = base_url, api_key_env, timeout_s, max_retries
        self.client: Any = None

    async def open(self) -> None:
        import openai

        api_key = os.environ[self.api_key_env] if self.api_key_env else "EMPTY"
        self.client = openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, timeout=self.timeout_s,
                                         max_retries=self.max_retries)

    async def close(self) -> None:
        await self.client.close()

    async def __call__(self, body: dict[str, Any]) -> tuple[str, Any]:
        response = await self.client.chat.completions.create(**body)
        return response.choices[0].message.content or "", response.usage


class ChatClient:
    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, max_concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 3, parse_retries: int = 2,
                 structured: str = "auto", cache: Any = None, sender: Any = None):
        """`sender` replaces the HTTP call (the `local` teacher's in-process model); by default
        an `OpenAISender` for `base_url`."""
        if structured not in ("auto", "json_schema", "off"):
            raise ValueError(f"structured must be 'auto', 'json_schema' or 'off', got {structured!r}")
        self.sender = sender or OpenAISender(base_url, api_key_env=api_key_env, timeout_s=timeout_s,
                                             max_retries=max_retries)
        self.model = model
        self.max_concurrency = max_concurrency
        self.parse_retries = parse_retries
        self.structured = structured
        self.cache = cache
        self.sent = 0  # requests sent to the server by this client (cache hits excluded)

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        """One reply per request, in order; cached replies are parsed again, never re-sent."""
        keys = [self._key(r) for r in requests]
        cached = self.cache.teacher_cached(sorted(set(keys))) if self.cache is not None and keys else {}
        replies: list[ChatReply | None] = [None] * len(requests)
        todo = []
        for n, (request, key) in enumerate(zip(requests, keys)):
            if key in cached:
                try:
                    replies[n] = ChatReply(request.parse(cached[key]), cached=True)
                    continue
                except TeacherOutputError:  # a template's model changed since: ask again
                    pass
            todo.append(n)
        if todo:
            fresh = asyncio.run(self._run([requests[n] for n in todo], [keys[n] for n in todo]))
            for n, reply in zip(todo, fresh):
                replies[n] = reply
        return replies  # type: ignore[return-value]

    def _key(self, request: ChatRequest) -> str:
        return hashlib.sha256(f"{self.model}|{request.key}".encode()).hexdigest()

    async def _run(self, requests: Sequence[ChatRequest], keys: Sequence[str]) -> list[ChatReply]:
        await self.sender.open()
        gate = asyncio.Semaphore(self.max_concurrency)
        buffer: list[TeacherCall] = []
        try:
            async def one(request: ChatRequest, key: str) -> ChatReply:
                async with gate:
                    reply = await self._ask(request, key, buffer)
                if len(buffer) >= FLUSH_EVERY:
                    self._flush(buffer)
                return reply

            return list(await asyncio.gather(*(one(r, k) for r, k in zip(requests, keys))))
        finally:
            self._flush(buffer)
            await self.sender.close()

    async def _ask(self, request: ChatRequest, key: str, buffer: list[TeacherCall]) -> ChatReply:
        """Up to 1 + parse_retries tries; each try's outcome is buffered for the store."""
        error = ""
        for attempt in range(self.parse_retries + 1):
            # A retry must not be the same greedy request again: new seed, some temperature.
            temperature = request.temperature if attempt == 0 else max(request.temperature, 0.7)
            seed = request.seed + attempt * 7919
            start = time.perf_counter()
            text, usage = "", None
            try:
                text, usage = await self._send(self._body(request, temperature, seed))
                self.sent += 1
                value = request.parse(text)
            except (*self.sender.errors, TeacherOutputError, ValueError) as err:
                error = _describe(err)
                buffer.append(self._row(key, attempt, request, "error", text, error, usage, start))
                continue
            buffer.append(self._row(key, attempt, request, "ok", text, "", usage, start))
            return ChatReply(value)
        return ChatReply(error=error)

    def _body(self, request: ChatRequest, temperature: float, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages, "temperature": temperature,
                                "max_tokens": request.max_tokens, "seed": seed}
        if self.structured != "off":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": request.template.replace(".", "_"), "schema": request.schema, "strict": True}}
        return body

    async def _send(self, body: dict[str, Any]) -> tuple[str, Any]:
        """The reply's text and usage. A server without guided decoding refusing the schema is,
        under `auto`, asked the same in plain JSON, now and from then on (the prompts ask for
        JSON too); under `json_schema` that stops the run rather than degrade it."""
        try:
            return await self.sender(body)
        except getattr(self.sender, "refusal", ()) as err:
            if "response_format" not in body or not any(word in str(err).lower() for word in _SCHEMA_REFUSED):
                raise
            if self.structured == "json_schema":
                raise TeacherRefused(f"teacher.llm.structured is 'json_schema' but the server refused the reply's "
                                     f"schema ({_describe(err)}); set teacher.llm.structured: auto to fall back "
                                     "to plain JSON") from None
            self.structured = "off"
            return await self.sender({key: value for key, value in body.items() if key != "response_format"})

    def _row(self, key: str, attempt: int, request: ChatRequest, status: str, text: str, error: str,
             usage: Any, start: float) -> TeacherCall:
        return TeacherCall(key, attempt, request.template, self.model, status, text, error,
                           getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                           time.perf_counter() - start)

    def _flush(self, buffer: list[TeacherCall]) -> None:
        if buffer and self.cache is not None:
            rows, buffer[:] = list(buffer), []
            self.cache.add_teacher_calls(rows)
        else:
            buffer.clear()


def _describe(err: Exception) -> str:
    """One line: the error's kind and message (server errors can be long HTML pages), with
    anything that looks like a credential replaced: it is stored in `teacher_calls`."""
    text = " ".join(str(err).split())
    return redact(f"{type(err).__name__}: {text[:500]}")


# What a provider's error text may echo back: "Incorrect API key provided: sk-...", a bearer
# header, `api_key=...` in a URL or JSON body.
_SECRETS = re.compile(
    r"(?i)\b(?:sk|pk|rk|hf|gh[pousr]|xox[abpr])[-_][A-Za-z0-9_\-]{8,}"
    r"|\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|(?<=[\"'\s?&,{])(?:api[_-]?key|access[_-]?token|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?[^\s\"',&}]{4,}")


def redact(text: str) -> str:
    """`text` with credential-like strings, and the configured keys' values, as [REDACTED]."""
    for value in _secret_values():
        text = text.replace(value, "[REDACTED]")
    return _SECRETS.sub("[REDACTED]", text)


def _secret_values() -> list[str]:
    """Values of the environment variables a config may name for keys (long enough to be one)."""
    return [v for k, v in os.environ.items() if len(v) >= 12 and re.search(r"(?i)key|token|secret", k)]
