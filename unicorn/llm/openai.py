"""`openai:URL#MODEL`: any OpenAI-compatible chat server (vLLM serve, llama.cpp server, SGLang, Ollama, hosted APIs).

Requests run concurrently with a bounded number in flight, each with a timeout, and are retried with
exponential backoff on 429, 5xx and connection errors. A request that still fails after its retries means the
server is down or overloaded, not that the request is bad: it raises `ServiceUnavailable`, which stops the run
(replies already received are cached). A 4xx other than 408/409/429 is the request's own fault: that request
alone comes back with `error` set. The API key is read from an environment variable and never logged or cached.

`SamplingParams.json_schema` is sent as `response_format` ({"type": "json_schema", ...}, which vLLM, SGLang, llama.cpp's
server and OpenAI enforce while decoding). A server that refuses it (HTTP 400/422 naming response_format or the
schema, or any 400 to a request that carried one) gets the request again without it: the reply is then only
checked after decoding, by the caller's validator. This fallback is counted (`schema_fallbacks`, in the run's
counters), warned about once, and remembered, so later requests skip the refused parameter.

"""

from __future__ import annotations

import asyncio
import os
import random
import sys

from ..errors import InputError, ServiceUnavailable
from .base import LLM, Completion
from .cache import RequestCache

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAILLM(LLM):
    def __init__(
        self,
        ident: str,
        *,
        cache: RequestCache | None = None,
        max_in_flight: int = 16,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 0.5,
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        super().__init__(cache=cache)
        url, sep, model = ident.partition("#")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise InputError(f"openai spec 'openai:{ident}' must be openai:http(s)://HOST[:PORT]/v1#MODEL")
        if max_in_flight < 1 or retries < 0 or timeout <= 0:
            raise InputError("max_in_flight must be >= 1, retries >= 0 and timeout > 0")
        self.spec = f"openai:{ident}"
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.model_id = f"openai:{url.rstrip('/')}#{model}"
        self.max_in_flight, self.timeout, self.retries, self.backoff = max_in_flight, timeout, retries, backoff
        self._key = os.environ.get(api_key_env, "")
        self.retried = 0  # how many attempts were retries, for the run's statistics
        self.schema_fallbacks = 0  # requests sent again without response_format, which the server refused
        self._schema_refused = False

    def _refused_schema(self, reply: str) -> None:
        self.schema_fallbacks += 1
        if not self._schema_refused:
            self._schema_refused = True
            print(
                f"warning: {self.url} refused response_format ({reply[:120].strip()}); sending JSON schemas no more, "
                "replies are validated after decoding only",
                file=sys.stderr,
            )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _generate(self, requests, params, done) -> None:
        asyncio.run(self._run(requests, params, done))

    async def _run(self, requests, params, done) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
        gate = asyncio.Semaphore(self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits, headers=self._headers()) as client:

            async def one(j: int) -> None:
                async with gate:
                    done(j, await self._request(client, requests[j], params[j]))

            await asyncio.gather(*(one(j) for j in range(len(requests))))

    async def _request(self, client, messages, p) -> Completion:
        import httpx

        body = {
            "model": self.model,
            "messages": messages,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_tokens,
            "seed": p.seed,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if p.json_schema is not None and not self._schema_refused:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": p.schema, "strict": True},
            }
        rng = random.Random(p.seed)  # jitter that is reproducible, yet spreads retries of different requests
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + rng.random()))
            try:
                response = await client.post(self.url, json=body)
            except httpx.TransportError as e:
                error = f"{type(e).__name__}: {e}"
                continue
            if response.status_code in RETRY_STATUS:
                error = f"HTTP {response.status_code}"
                continue
            if response.status_code in (400, 422) and "response_format" in body:
                self._refused_schema(response.text)
                body = {k: v for k, v in body.items() if k != "response_format"}
                response = await client.post(self.url, json=body)
                if response.status_code in RETRY_STATUS:
                    error = f"HTTP {response.status_code}"
                    continue
            if response.status_code != 200:
                return Completion("", error=f"HTTP {response.status_code}: {response.text[:200]}")
            try:
                data = response.json()
                choice = data["choices"][0]
                usage = data.get("usage") or {}
                return Completion(
                    choice["message"].get("content") or "",
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    finish_reason=choice.get("finish_reason") or "stop",
                )
            except (ValueError, KeyError, IndexError, TypeError) as e:
                return Completion("", error=f"malformed response: {type(e).__name__}: {e}")
        raise ServiceUnavailable(f"LLM server {self.url} failed {self.retries + 1} attempts: {error}")
