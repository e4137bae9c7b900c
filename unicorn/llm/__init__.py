"""LLM backends behind one interface, chosen by a spec string, with an on-disk request cache.

llm = create_llm("llamacpp:default", cache="cache.sqlite")
completions = llm.generate([[{"role": "user", "content": "A photo of"}]], SamplingParams(max_tokens=32))
"""

from __future__ import annotations

import os

from ..registry import Registry
from ..spec import parse_spec
from .base import LLM, Completion, Messages, SamplingParams, Usage
from .cache import RequestCache

BACKENDS = Registry(
    "LLM backend",
    {"llamacpp": ".llamacpp:LlamaCppLLM", "openai": ".openai:OpenAILLM", "vllm": ".vllm:VllmLLM", "hf": ".hf:HFLLM"},
    __name__,
    LLM,
)
SCHEMAS = BACKENDS.names()  # the built-in ones; list_backends() includes those registered later


def list_backends() -> tuple[str, ...]:
    return BACKENDS.names()


def register_backend(schema: str, cls: type[LLM]) -> type[LLM]:
    """Add an LLM backend (a subclass of `LLM` that writes `_generate`), usable as `schema:ID` in any config."""
    return BACKENDS.register(schema, cls)


def backend_class(spec: str) -> type[LLM]:
    schema, _ = parse_spec("llamacpp:default" if spec == "llamacpp" else spec, BACKENDS.names(), "llm")
    return BACKENDS.get(schema)


def create_llm(spec: str, *, cache: str | os.PathLike | RequestCache | None = None, **options) -> LLM:
    """Build a backend: `llamacpp:PATH|default`, `openai:URL#MODEL`, `vllm:MODEL`, `hf:NAME_OR_DIR`, or a
    registered one's `SCHEMA:ID`."""
    schema, ident = parse_spec("llamacpp:default" if spec == "llamacpp" else spec, BACKENDS.names(), "llm")
    if cache is not None and not isinstance(cache, RequestCache):
        cache = RequestCache(cache)
    return BACKENDS.get(schema)(ident, cache=cache, **options)


__all__ = [
    "LLM",
    "SCHEMAS",
    "Completion",
    "Messages",
    "RequestCache",
    "SamplingParams",
    "Usage",
    "backend_class",
    "create_llm",
    "list_backends",
    "register_backend",
]
