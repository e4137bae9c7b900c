"""The numbers of a caption run (the funnel, dedup, diversity, LLM usage) and their text rendering."""

from __future__ import annotations

from collections import Counter

from .diversity import diversity
from .filters import FUNNEL


def caption_stats(seeds: list[str], batch: dict, counters: Counter, *, encoder=None) -> dict:
    """Figures for a `captions` + `dedup` output batch made from `seeds`."""
    variants = [i for i, p in enumerate(batch["provenance"]) if p != "seed"]
    reasons = Counter(batch["reject"][i] for i in variants)
    kept = [c for c, r in zip(batch["caption"], batch["reject"], strict=True) if r is None]
    seconds = counters.get("llm_seconds", 0.0)
    tokens = counters.get("llm_completion_tokens", 0)
    return {
        "seeds": len(seeds),
        "variants": len(variants),
        "kept": len(kept),
        "filters": {name: reasons[name] for name in FUNNEL}
        | {"passed": sum(reasons[r] for r in (None, "exact_duplicate", "semantic_duplicate"))},
        "dedup": {"exact": reasons["exact_duplicate"], "semantic": reasons["semantic_duplicate"]},
        "diversity": {
            "seeds": diversity(seeds, encoder.encode_text(seeds) if encoder is not None and seeds else None),
            "variants": diversity([batch["caption"][i] for i in variants if batch["caption"][i]]),
            "kept": diversity(kept, encoder.encode_text(kept) if encoder is not None and kept else None),
        },
        "llm": {
            "requests": int(counters.get("llm_requests", 0)),
            "cache_hits": int(counters.get("llm_cache_hits", 0)),
            "completion_tokens": int(tokens),
            "seconds": round(seconds, 2),
            "tokens_per_second": round(tokens / seconds, 2) if seconds else 0.0,
        },
    }


def format_stats(stats: dict) -> str:
    """The filter funnel and headline figures as a few lines of text."""
    lines = [f"{stats['seeds']} seeds -> {stats['variants']} variants -> {stats['kept']} kept rows"]
    lines += [f"  removed by {name:<13} {count}" for name, count in stats["filters"].items() if name != "passed"]
    lines += [f"  removed by {name + ' dup':<13} {count}" for name, count in stats["dedup"].items()]
    u = stats["llm"]
    lines.append(
        f"llm: {u['requests']} requests, {u['cache_hits']} from cache, "
        f"{u['completion_tokens']} tokens at {u['tokens_per_second']} tok/s"
    )
    d = stats["diversity"]
    lines.append(
        f"distinct-2 seeds {d['seeds']['distinct_2']} -> kept {d['kept']['distinct_2']}; "
        f"mean words {d['seeds']['mean_words']} -> {d['kept']['mean_words']}"
    )
    return "\n".join(lines)
