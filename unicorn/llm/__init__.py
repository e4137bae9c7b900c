"""LLM backends behind one interface, chosen by a spec string, with an on-disk request cache.

llm = create_llm("llamacpp:default", cache="cache.sqlite")
completions = llm.generate([[{"role": "user", "content": "A photo of"}]], SamplingParams(max_tokens=32))
"""

from __future__ import annotations

import os

from ..spec import parse_spec
from .base import LLM, Completion, Messages, SamplingParams, Usage
from .cache import RequestCache

SCHEMAS = ("llamacpp", "openai", "vllm", "hf")


def create_llm(spec: str, *, cache: str | os.PathLike | RequestCache | None = None, **options) -> LLM:
    """Build a backend: `llamacpp:PATH|default`, `openai:URL#MODEL`, `vllm:MODEL`, `hf:NAME_OR_DIR`."""
    schema, ident = parse_spec("llamacpp:default" if spec == "llamacpp" else spec, SCHEMAS, "llm")
    if cache is not None and not isinstance(cache, RequestCache):
        cache = RequestCache(cache)
    if schema == "llamacpp":
        from .llamacpp import LlamaCppLLM as cls
    elif schema == "openai":
        from .openai import OpenAILLM as cls
    elif schema == "vllm":
        from .vllm import VllmLLM as cls
    else:
        from .hf import HFLLM as cls
    return cls(ident, cache=cache, **options)


__all__ = ["LLM", "SCHEMAS", "Completion", "Messages", "RequestCache", "SamplingParams", "Usage", "create_llm"]
