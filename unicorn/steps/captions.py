"""The `captions` step: each seed row, plus k LLM variants of it written in a persona's voice, through the
counted filter funnel (length, non-text, repetition, language, faithfulness, scene, optional photograph judge).

The `scene` filter (`captions/scene_check.py`) rejects a variant that names an object, attribute, number or relation
its seed's scene lacks (world scenes exactly; COCO-style instances by category noun). Every variant is checked, kept
or not, and carries `scene_errors` (what it got wrong, JSON) and `scene_coverage`, so a run reports hallucination
and coverage before and after filtering."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..captions.filters import FilterConfig, apply_filters
from ..captions.scene_check import check_caption
from ..captions.variants import diversify
from ..context import RowContext
from ..errors import InputError
from ..prompts import load_lines, load_text
from .base import NO_RUNTIME, Columns, Runtime, Step, llm_options

SEED_COLUMNS = ("id", "text", "scene")
ROW_COLUMNS = ("id", "seed_id", "seed", "caption", "provenance", "persona", "faithfulness", "scene", "scene_errors",
               "scene_coverage", "reject")  # fmt: skip


@dataclass(frozen=True)
class CaptionsConfig:
    llm: str = "llamacpp:default"
    k: int = 2  # LLM variants per seed
    max_tokens: int = 96
    temperature: float = 0.9
    include_seeds: bool = True  # keep each seed caption as a row beside its variants
    min_faithfulness: float = 0.5  # cosine of variant and seed under filter_encoder
    judge: bool = False  # also ask the LLM whether each variant could caption a photograph
    filter_encoder: str = "st:default"
    prompt: str = "caption"
    personas: str = "personas"
    scene_check: bool = True  # reject variants that name what their seed's scene lacks (rows with a scene only)
    min_fact_share: float = 0.0  # > 0: reject variants stating fewer scene facts than this share of the seed's

    def __post_init__(self) -> None:
        if self.k < 0:
            raise InputError(f"captions.k must be >= 0, got {self.k}")
        if self.max_tokens < 1:
            raise InputError(f"captions.max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 <= self.min_fact_share <= 10:
            raise InputError(f"captions.min_fact_share must be in [0, 10], got {self.min_fact_share}")
        if self.k == 0 and not self.include_seeds:
            raise InputError("config makes no rows: captions.k is 0 and captions.include_seeds is false")


def seed_columns(seeds: list[dict]) -> Columns:
    """Seed rows from `read_seeds` as the step's input batch (scenes as JSON text, so any engine carries them)."""
    return {
        "id": [s["id"] for s in seeds],
        "text": [s["text"] for s in seeds],
        "scene": [RowContext.decode(s.get("scene")).encode() for s in seeds],
    }


class CaptionsStep(Step):
    name = "captions"
    config_class = CaptionsConfig
    ray_defaults = {"concurrency": 1, "num_cpus": 1, "num_gpus": 0}
    metadata = ("id", "seed_id", "caption", "provenance", "persona", "faithfulness", "scene")  # every row's own columns

    def __init__(self, config: CaptionsConfig, *, seed: int = 0, runtime: Runtime = NO_RUNTIME) -> None:
        from ..encoders import create_encoder
        from ..llm import create_llm

        self.config, self.seed = config, seed
        self.template = load_text(config.prompt, fields=("seed", "persona"))
        self.personas = load_lines(config.personas)
        self.filters = FilterConfig(min_faithfulness=config.min_faithfulness, judge=config.judge)
        self.llm = create_llm(config.llm, **llm_options(config.llm, runtime)) if config.k else None
        self.encoder = create_encoder(config.filter_encoder) if config.k else None

    def __call__(self, batch: Columns) -> Columns:
        c = self.config
        out: Columns = {name: [] for name in ROW_COLUMNS}

        def add(**row) -> None:
            for name in ROW_COLUMNS:
                out[name].append(row[name])

        scenes = dict(zip(batch["id"], batch["scene"], strict=True))
        if c.include_seeds:
            for sid, text in zip(batch["id"], batch["text"], strict=True):
                add(id=f"{sid}#seed", seed_id=sid, seed=text, caption=text, provenance="seed", persona=None,
                    faithfulness=1.0, scene=scenes[sid], scene_errors=None, scene_coverage=None,
                    reject=None)  # fmt: skip
        if c.k and batch["id"]:
            variants = diversify(
                {"id": batch["id"], "text": batch["text"]},
                self.llm,
                k=c.k,
                template=self.template,
                personas=self.personas,
                seed=self.seed,
                max_tokens=c.max_tokens,
                temperature=c.temperature,
            )
            # the scene check is free: run for every variant (the report's before-filtering figures), and as a filter
            # before the paid judge, so the judge is never asked about a row it rejects
            checks = [check_caption(variants["caption"][i], RowContext.decode(scenes[variants["seed_id"][i]]))
                      for i in range(len(variants["id"]))]  # fmt: skip
            wrong = [c.scene_check and check is not None and bool(check.wrong) for check in checks]
            # min_fact_share 1: a variant at least as dense as its seed (a variant stating fewer of the scene's facts
            # teaches a VLM shorter captions; measured in bench/vlm.py, not better there: docs/vlm.md)
            thin = None
            if c.min_fact_share > 0:
                seed_facts = {sid: check_caption(text, RowContext.decode(scenes[sid]))
                              for sid, text in zip(batch["id"], batch["text"], strict=True)}  # fmt: skip
                thin = [check is not None and seed_facts[sid] is not None
                        and check.facts < c.min_fact_share * seed_facts[sid].facts
                        for check, sid in zip(checks, variants["seed_id"], strict=True)]  # fmt: skip
            scored = apply_filters(variants, self.filters, encoder=self.encoder, judge=self.llm, scene_wrong=wrong,
                                   scene_thin=thin)  # fmt: skip
            for i in range(len(scored["id"])):
                scene = scenes[scored["seed_id"][i]]
                check, reject = checks[i], scored["reject"][i]
                add(id=scored["id"][i], seed_id=scored["seed_id"][i], seed=scored["seed"][i],
                    caption=scored["caption"][i], provenance=f"llm:{self.llm.spec}", persona=scored["persona"][i],
                    faithfulness=scored["faithfulness"][i], scene=scene,
                    scene_errors=json.dumps(check.wrong) if check is not None else None,
                    scene_coverage=round(check.coverage, 4) if check is not None else None,
                    reject=reject)  # fmt: skip
        return out
