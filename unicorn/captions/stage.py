"""`run_captions`: seeds -> k variants each -> filters -> exact and semantic dedup, with counted outcomes."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError
from ..llm import LLM
from .dedup import SemanticDedup, exact_duplicates
from .diversify import diversify
from .diversity import diversity
from .filters import FilterConfig, apply_filters, funnel_counts
from .prompts import load_lines, load_text


@dataclass(frozen=True)
class CaptionConfig:
    k: int = 3
    seed: int = 0
    batch_size: int = 32
    max_tokens: int = 96
    temperature: float = 0.9
    dedup_threshold: float = 0.95
    prompt: str = "caption"
    personas: str = "personas"
    filters: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        if self.k < 1 or self.batch_size < 1:
            raise InputError(f"k and batch_size must be >= 1, got {self.k}, {self.batch_size}")


def _columns(rows: list[dict]) -> dict[str, list]:
    return {"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}


def run_captions(
    seeds: list[dict], llm: LLM, encoder, config: CaptionConfig, *, judge: LLM | None = None, log=print
) -> tuple[list[dict], list[dict], dict]:
    """(kept rows, rejected rows with their reason, statistics) for `seeds`."""
    template = load_text(config.prompt, fields=("seed", "persona"))
    personas = load_lines(config.personas)
    started = time.perf_counter()
    kept, rejected, rejects = [], [], []
    seen: set[str] = set()
    semantic = SemanticDedup(encoder.dim, config.dedup_threshold)
    dedup = {"exact": 0, "semantic": 0}
    all_variants, kept_emb = [], []
    for start in range(0, len(seeds), config.batch_size):
        batch = _columns(seeds[start : start + config.batch_size])
        variants = diversify(
            batch,
            llm,
            k=config.k,
            template=template,
            personas=personas,
            seed=config.seed,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
        )
        scored = apply_filters(variants, config.filters, encoder=encoder, judge=judge)
        rows = [dict(zip(scored, values, strict=True)) for values in zip(*scored.values(), strict=True)]
        all_variants += [r["caption"] for r in rows if r["caption"]]
        passing = [r for r in rows if r["reject"] is None]
        for r, dup in zip(passing, exact_duplicates([r["caption"] for r in passing], seen), strict=True):
            if dup:
                r["reject"] = "exact_duplicate"
        passing = [r for r in passing if r["reject"] is None]
        if passing:
            emb = encoder.encode_text([r["caption"] for r in passing])
            for r, e, dup in zip(passing, emb, semantic.duplicates(emb), strict=True):
                if dup:
                    r["reject"] = "semantic_duplicate"
                else:
                    kept_emb.append(e)
        for r in rows:
            rejects.append(r["reject"])
            (kept if r["reject"] is None else rejected).append(r)
        done = min(start + config.batch_size, len(seeds))
        log(f"captions: {done}/{len(seeds)} seeds, {len(kept)} kept, {llm.usage.tokens_per_second:.1f} tok/s")
    dedup["exact"] = rejects.count("exact_duplicate")
    dedup["semantic"] = rejects.count("semantic_duplicate")
    seed_texts = [s["text"] for s in seeds]
    stats = {
        "seeds": len(seeds),
        "variants": len(rejects),
        "kept": len(kept),
        "filters": funnel_counts([r if r not in ("exact_duplicate", "semantic_duplicate") else None for r in rejects]),
        "dedup": dedup,
        "diversity": {
            "seeds": diversity(seed_texts, encoder.encode_text(seed_texts)),
            "variants": diversity(all_variants),
            "kept": diversity([r["caption"] for r in kept], np.array(kept_emb) if kept_emb else None),
        },
        "llm": {**asdict(llm.usage), "tokens_per_second": round(llm.usage.tokens_per_second, 2), "spec": llm.spec},
        "seconds": round(time.perf_counter() - started, 2),
        "config": asdict(config),
    }
    return kept, rejected, stats


def format_stats(stats: dict) -> str:
    """The filter funnel and headline figures as a few lines of text."""
    f = stats["filters"]
    lines = [f"{stats['seeds']} seeds -> {stats['variants']} variants -> {stats['kept']} kept"]
    lines += [f"  removed by {name:<13} {count}" for name, count in f.items() if name != "passed"]
    lines += [f"  removed by {name + ' dup':<13} {count}" for name, count in stats["dedup"].items()]
    u = stats["llm"]
    lines.append(
        f"llm {u['spec']}: {u['requests']} requests, {u['cache_hits']} from cache, "
        f"{u['completion_tokens']} tokens at {u['tokens_per_second']} tok/s"
    )
    d = stats["diversity"]
    lines.append(
        f"distinct-2 seeds {d['seeds']['distinct_2']} -> kept {d['kept']['distinct_2']}; "
        f"mean words {d['seeds']['mean_words']} -> {d['kept']['mean_words']}"
    )
    return "\n".join(lines)
