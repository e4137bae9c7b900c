"""`openai:URL#MODEL`: any OpenAI-compatible chat server (vLLM serve, llama.cpp server, SGLang, Ollama, hosted APIs).

Requests run concurrently with a bounded number in flight, each with a timeout, and are retried with
exponential backoff on 429, 5xx and connection errors. A request that still fails after its retries means the
server is down or overloaded, not that the request is bad: it raises `ServiceUnavailable`, which stops the run
(replies already received are cached). A 4xx other than 408/409/429 is the request's own fault: that request
alone comes back with `error` set. The API key is read from an environment variable and never logged or cached.

`SamplingParams.json_schema` is sent as `response_format`, enforced while decoding by the server: first OpenAI's
form `{"type": "json_schema", ...}` (vLLM, SGLang, OpenAI); a server that refuses it (HTTP 400/422, or a 500 naming
response_format, as llama.cpp's server does) gets the request again in llama.cpp's form `{"type": "json_object",
"schema": ...}`, and one that refuses that too gets it without a schema (the reply is then only checked after
decoding, by the caller's validator). Each fallback is counted (`schema_fallbacks`, in the run's counters), warned
about once per form, and remembered, so later requests go straight to the form that works.

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
        self.schema_fallbacks = 0  # requests sent again in another response_format style, or without one
        self._schema_styles = ["json_schema", "json_object", None]  # what to try, best first; refused ones leave

    @staticmethod
    def _refused(response) -> bool:
        """A server refusing the response_format it was sent: 400/422, or a 500 whose message names it (llama.cpp's
        server answers an unknown `type` with a validation error as HTTP 500)."""
        if response.status_code in (400, 422):
            return True
        return response.status_code == 500 and "response_format" in response.text

    def _format(self, body: dict, schema: dict) -> None:
        style = self._schema_styles[0]
        body.pop("response_format", None)
        if style == "json_schema":  # OpenAI's form (vLLM, SGLang, OpenAI)
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": schema, "strict": True}}  # fmt: skip
        elif style == "json_object":  # llama.cpp server's form: enforced by its grammar
            body["response_format"] = {"type": "json_object", "schema": schema}

    def _refused_schema(self, style: str, reply: str) -> None:
        self.schema_fallbacks += 1
        if self._schema_styles[0] == style:
            self._schema_styles.pop(0)
            then = self._schema_styles[0] or "none: replies are validated after decoding only"
            print(f"warning: {self.url} refused response_format {style} ({reply[:100].strip()}); now sending: {then}",
                  file=sys.stderr)  # fmt: skip

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
        if p.json_schema is not None:
            self._format(body, p.schema)
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
            while "response_format" in body and self._refused(response):
                self._refused_schema(body["response_format"]["type"], response.text)
                self._format(body, p.schema)
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
