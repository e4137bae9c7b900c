"""`hf:NAME_OR_DIR`: transformers `generate` for small local causal language models.

`SamplingParams.json_schema` is enforced while decoding by xgrammar's logits processor (the `hf` extra): the schema
is compiled once against the tokenizer's vocabulary, and each request gets a fresh matcher that masks every token
the schema does not allow next.
"""

from __future__ import annotations

import torch

from ..encoders.base import load_error
from ..errors import InputError
from .base import LLM, Completion, keep_recent, render_prompt
from .cache import RequestCache


class HFLLM(LLM):
    def __init__(self, ident: str, *, cache: RequestCache | None = None, device: str | None = None) -> None:
        super().__init__(cache=cache)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec, self.model_id = f"hf:{ident}", f"hf:{ident}"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(ident)
            self.model = AutoModelForCausalLM.from_pretrained(ident).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise load_error(self.spec, e) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._compiled: dict = {}

    def _constraint(self, schema: str | None) -> list:
        """[a logits processor enforcing `schema`], or [] without one."""
        if schema is None:
            return []
        try:
            import xgrammar as xgr
            from xgrammar.contrib.hf import LogitsProcessor
        except ImportError:
            raise InputError("JSON schemas on the hf backend need xgrammar: pip install 'unicorn-vlm[hf]'") from None
        if schema not in self._compiled:
            if not hasattr(self, "_compiler"):
                info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
                self._compiler = xgr.GrammarCompiler(info)
            keep_recent(self._compiled, schema, self._compiler.compile_json_schema(schema, any_whitespace=False))
        return [LogitsProcessor(self._compiled[schema])]

    def _prompt(self, messages) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_prompt(messages)

    @torch.inference_mode()
    def _generate(self, requests, params, done) -> None:
        for j, (messages, p) in enumerate(zip(requests, params, strict=True)):
            ids = self.tokenizer(self._prompt(messages), return_tensors="pt").to(self.device)
            torch.manual_seed(p.seed)
            sample = p.temperature > 0
            out = self.model.generate(
                **ids,
                max_new_tokens=p.max_tokens,
                do_sample=sample,
                temperature=p.temperature if sample else None,
                top_p=p.top_p if sample else None,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                logits_processor=self._constraint(p.json_schema) or None,
            )
            new = out[0, ids["input_ids"].shape[1] :]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            finish = "length" if len(new) >= p.max_tokens else "stop"
            for s in p.stop:  # transformers has no stop strings without a tokenizer-specific criterion
                if s in text:
                    text, finish = text[: text.index(s)], "stop"
            done(j, Completion(text, int(ids["input_ids"].shape[1]), int(len(new)), finish))
