"""The LLM interface: a batch of chat requests in, completions with token counts out, cached on disk.

Backends implement `_generate` for the requests the cache does not hold; `generate` does the rest, so
a re-run or a resumed run never pays for a request twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from ..errors import InputError
from .cache import RequestCache, request_key

Messages = list[dict[str, str]]  # [{"role": "system" | "user" | "assistant", "content": "..."}]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion; part of the cache key, so changing any field asks the model again."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 128
    seed: int = 0
    stop: tuple[str, ...] = ()
    # A JSON Schema (as a JSON string, so the params stay hashable and the schema is part of the cache key) that
    # the reply must satisfy; each backend enforces it while decoding (see `json_schema` in each backend).
    json_schema: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.temperature <= 5:
            raise InputError(f"temperature must be in [0, 5], got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise InputError(f"max_tokens must be >= 1, got {self.max_tokens}")
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.json_schema is not None:
            check_schema(self.json_schema)

    @property
    def schema(self) -> dict | None:
        return json.loads(self.json_schema) if self.json_schema is not None else None


def check_schema(text: str) -> None:
    """A JSON Schema the backends can enforce: valid JSON, a valid schema (Draft 2020-12 meta-schema), an object."""
    try:
        schema = json.loads(text)
    except (TypeError, ValueError) as e:
        raise InputError(f"json_schema is not valid JSON: {e}") from None
    if not isinstance(schema, dict):
        raise InputError(f"json_schema must be a JSON object, got {type(schema).__name__}")
    try:
        import jsonschema

        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise InputError(f"json_schema is not a valid JSON Schema: {e.message}") from None


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    error: str | None = None  # set when the request failed for good; such completions are never cached
    cached: bool = field(default=False, compare=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("cached")
        return d


@dataclass
class Usage:
    """Running totals over a backend's life: what was asked, what the cache answered, tokens and time."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    seconds: float = 0.0  # wall time spent in the model (cache hits cost none)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0


def check_messages(messages: Messages, row: int) -> None:
    if not isinstance(messages, list) or not messages:
        raise InputError(f"request {row} must be a non-empty list of messages")
    for m in messages:
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("system", "user", "assistant")
            or not isinstance(m.get("content"), str)
        ):
            raise InputError(f"request {row} has a malformed message {str(m)[:80]!r}")


def render_prompt(messages: Messages) -> str:
    """Messages as one plain prompt, for base models that have no chat template (few-shot prompting)."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(m["content"] for m in messages)


def split_prefix(messages: Messages) -> tuple[str, str]:
    """(shared prefix, the request's own text) of the plain prompt: leading system messages are the prefix that many
    requests share (instructions and few-shot examples), so a backend can evaluate it once. Joined with the same
    separator, the two parts are `render_prompt(messages)`."""
    n = 0
    while n < len(messages) - 1 and messages[n]["role"] == "system":
        n += 1
    if n == 0:
        return "", render_prompt(messages)
    return render_prompt(messages[:n]) + "\n\n", "\n\n".join(m["content"] for m in messages[n:])


def keep_recent(cache: dict, key, value, *, keep: int = 16) -> None:
    """Put `value` in a small insertion-ordered cache, dropping the oldest entry beyond `keep`: compiled grammars are
    per schema, and the conversation writer builds a schema per row, so an unbounded dict would grow with the run."""
    cache[key] = value
    while len(cache) > keep:
        cache.pop(next(iter(cache)))


class LLM:
    """A text generator behind one interface. `spec` names it; `model_id` identifies its weights for caching."""

    spec: str
    model_id: str

    def __init__(self, *, cache: RequestCache | None = None) -> None:
        self.cache = cache
        self.usage = Usage()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def generate(
        self,
        requests: Sequence[Messages],
        params: SamplingParams | Sequence[SamplingParams] = SamplingParams(),
        *,
        progress: bool | None = None,
    ) -> list[Completion]:
        """One completion per request, in order; `params` is shared or given per request."""
        requests = list(requests)
        per = [params] * len(requests) if isinstance(params, SamplingParams) else list(params)
        if len(per) != len(requests):
            raise InputError(f"{len(per)} sampling params for {len(requests)} requests")
        for row, messages in enumerate(requests):
            check_messages(messages, row)
        keys = [request_key(self.model_id, m, asdict(p)) for m, p in zip(requests, per, strict=True)]
        out: list[Completion | None] = [None] * len(requests)
        if self.cache is not None:
            for i, hit in enumerate(self.cache.get_many(keys)):
                if hit is not None:
                    out[i] = hit
        todo = [i for i, c in enumerate(out) if c is None]
        self.usage.requests += len(requests)
        self.usage.cache_hits += len(requests) - len(todo)
        if todo:
            show = len(todo) > 1 if progress is None else progress
            started = time.perf_counter()
            with tqdm(total=len(todo), desc=f"generate ({self.spec})", unit="req", disable=not show) as bar:

                def done(j: int, completion: Completion) -> None:
                    i = todo[j]
                    out[i] = completion
                    if self.cache is not None and completion.error is None:
                        self.cache.put(keys[i], completion)  # committed at once: a killed run keeps it
                    self.usage.prompt_tokens += completion.prompt_tokens
                    self.usage.completion_tokens += completion.completion_tokens
                    self.usage.errors += completion.error is not None
                    elapsed = self.usage.seconds + time.perf_counter() - started
                    bar.update(1)
                    bar.set_postfix(tok_s=f"{self.usage.completion_tokens / max(elapsed, 1e-9):.1f}")

                self._generate([requests[i] for i in todo], [per[i] for i in todo], done)
            self.usage.seconds += time.perf_counter() - started
        return out  # type: ignore[return-value]

    @classmethod
    def runtime_options(cls, *, threads: int | None = None, gpus: float = 0) -> dict:
        """Constructor options this backend takes from the worker it runs in (its CPU threads, its GPUs); the
        pipeline passes them without knowing the backend. Default: none."""
        return {}

    def _generate(self, requests: list[Messages], params: list[SamplingParams], done) -> None:
        """Generate each request and call `done(index, completion)` as each finishes (in any order)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the model, connections and the cache file."""
        if self.cache is not None:
            self.cache.close()
