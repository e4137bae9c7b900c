"""`vllm:MODEL`: vLLM's offline engine (`LLM.chat` with `SamplingParams`), batched, prefix caching on.

An optional extra (`pip install unicorn-vlm[vllm]`) that needs a GPU; imported only when asked for.
`SamplingParams.json_schema` is enforced while decoding by vLLM's structured outputs
(`StructuredOutputsParams(json=...)`
in vLLM >= 0.10.2, `GuidedDecodingParams(json=...)` before).
"""

from __future__ import annotations

from ..errors import InputError
from .base import LLM, Completion
from .cache import RequestCache


class VllmLLM(LLM):
    @classmethod
    def runtime_options(cls, *, threads: int | None = None, gpus: float = 0) -> dict:
        return {"tensor_parallel_size": int(gpus)} if gpus > 1 else {}  # one engine spans the actor's GPUs

    def __init__(self, ident: str, *, cache: RequestCache | None = None, **engine_args) -> None:
        super().__init__(cache=cache)
        self.spec, self.model_id = f"vllm:{ident}", f"vllm:{ident}"
        try:
            import vllm
        except ImportError:
            raise InputError("vllm backend needs the vllm extra: pip install 'unicorn-vlm[vllm]'") from None
        self._vllm = vllm
        try:
            self.engine = vllm.LLM(model=ident, enable_prefix_caching=True, **engine_args)
        except Exception as e:  # vLLM raises many types for missing weights, no GPU, bad config
            raise InputError(
                f"{self.spec}: could not start vLLM: {type(e).__name__}: {str(e).splitlines()[0]}"
            ) from None

    def _structured(self, p) -> dict:
        if p.json_schema is None:
            return {}
        from vllm import sampling_params as sp

        if hasattr(sp, "StructuredOutputsParams"):
            return {"structured_outputs": sp.StructuredOutputsParams(json=p.schema)}
        return {"guided_decoding": sp.GuidedDecodingParams(json=p.schema)}

    def _generate(self, requests, params, done) -> None:
        sampling = [
            self._vllm.SamplingParams(
                temperature=p.temperature,
                top_p=p.top_p,
                max_tokens=p.max_tokens,
                seed=p.seed,
                stop=list(p.stop),
                **self._structured(p),
            )  # fmt: skip
            for p in params
        ]
        outputs = self.engine.chat(requests, sampling, use_tqdm=False)
        for j, out in enumerate(outputs):
            o = out.outputs[0]
            done(j, Completion(o.text, len(out.prompt_token_ids), len(o.token_ids), o.finish_reason or "stop"))
