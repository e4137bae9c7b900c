"""`report.html` and `report.md` for a run: counts through every stage and filter, throughput, diversity,
sample rows, and PNG plots (caption lengths, a 2-D PCA of the embeddings, the projector's gap metrics)."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from modality_transfer.metrics import centroid_gap, cos_paired, recall_at_k  # noqa: E402

from ..captions.diversity import diversity  # noqa: E402
from .storage import RunFolder, iter_shards  # noqa: E402

STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%;margin:1em 0}"
)
MAX_REAL = 300  # rows whose scene is rendered and embedded as the real-image reference


def _real_images(encoder, scenes: list[dict]) -> np.ndarray:
    from ..world import render
    from ..world.scene import SceneGraph

    return encoder.encode_image([render(SceneGraph.from_dict(s)) for s in scenes])


def write_report(root: str | Path, *, encoder=None) -> Path:
    """Write the report into `root` (plots under `root/report/`); returns the HTML path."""
    root = Path(root)
    manifest = RunFolder(root).read_manifest()
    shards = list(iter_shards(root))
    meta = {k: [v for m, *_ in shards for v in m[k]] for k in shards[0][0]} if shards else {}
    text = np.concatenate([s[1] for s in shards]).astype(np.float32) if shards else np.zeros((0, 2))
    image = np.concatenate([s[2] for s in shards]).astype(np.float32) if shards else np.zeros((0, 2))
    conversations = [c for s in shards for c in s[3]]
    figures = root / "report"
    figures.mkdir(exist_ok=True)

    totals: Counter = Counter()
    seconds: Counter = Counter()
    for entry in manifest["shards"]:
        totals.update(entry["stats"])
        seconds.update(entry["seconds"])
    stages = ("captions", "dedup", "instruct", "embed", "write")

    seeds_rows = [c for c, p in zip(meta.get("caption", []), meta.get("provenance", []), strict=True) if p == "seed"]
    llm_rows = [c for c, p in zip(meta.get("caption", []), meta.get("provenance", []), strict=True) if p != "seed"]
    div = {"seed captions": diversity(seeds_rows), "LLM captions": diversity(llm_rows)}

    # plots
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, rows in (("seed", seeds_rows), ("LLM", llm_rows)):
        if rows:
            ax.hist([len(r.split()) for r in rows], bins=20, alpha=0.6, label=f"{name} ({len(rows)})")
    ax.set_xlabel("words per caption")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figures / "caption_lengths.png", dpi=110)
    plt.close(fig)

    gap = {}
    with_scene = [k for k, s in enumerate(meta.get("scene", [])) if s][:MAX_REAL]
    real = None
    if encoder is not None and getattr(encoder, "has_image", False) and with_scene:
        real = _real_images(encoder, [json.loads(meta["scene"][k]) for k in with_scene])
        idx = np.arange(len(with_scene))
        for name, emb in (("raw text", text[with_scene]), ("synthetic", image[with_scene])):
            gap[name] = {
                "cos_paired": cos_paired(emb, real),
                "centroid_gap": centroid_gap(emb, real),
                "r1": recall_at_k(emb, real, idx, ks=(1,))[1],
            }
    if len(text) >= 3:
        stack = [text, image] + ([real] if real is not None else [])
        allv = np.concatenate(stack)
        mean = allv.mean(0)
        _, _, vt = np.linalg.svd(allv - mean, full_matrices=False)
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for emb, label, colour in zip(
            stack, ["text", "synthetic image", "real image"], ["tab:blue", "tab:orange", "tab:green"], strict=False
        ):
            p = (emb - mean) @ vt[:2].T
            ax.scatter(p[:, 0], p[:, 1], s=6, alpha=0.6, label=f"{label} ({len(emb)})", color=colour)
        ax.set_title("PCA of the run's embeddings")
        ax.legend()
        fig.tight_layout()
        fig.savefig(figures / "embeddings_pca.png", dpi=110)
        plt.close(fig)
    if gap:
        fig, axes = plt.subplots(1, 3, figsize=(8, 3))
        for ax, metric in zip(axes, ["cos_paired", "centroid_gap", "r1"], strict=True):
            ax.bar(list(gap), [gap[k][metric] for k in gap], color=["tab:blue", "tab:orange"])
            ax.set_title(metric)
        fig.suptitle("synthetic vs raw text, measured against real rendered images")
        fig.tight_layout()
        fig.savefig(figures / "gap_metrics.png", dpi=110)
        plt.close(fig)

    samples = []
    by_image = {}
    for c in conversations:
        by_image.setdefault(c["image"], c)
    for k in range(min(8, len(meta.get("id", [])))):
        conv = by_image.get(meta["id"][k])
        first = conv["conversations"][:2] if conv else []
        samples.append(
            (
                meta["id"][k],
                meta["provenance"][k],
                meta["caption"][k],
                " / ".join(t["value"].replace("<image>\n", "") for t in first),
            )
        )

    counts = [("seeds", totals["seeds"]), ("LLM variants", totals["variants"])]
    counts += [
        (f"removed by filter: {k[7:]}", v)
        for k, v in totals.items()
        if k.startswith("filter_") and k != "filter_passed"
    ]
    counts += [
        ("removed as exact duplicates", totals["dedup_exact"]),
        ("removed as semantic duplicates", totals["dedup_semantic"]),
        ("rows (captions with embeddings)", totals["rows"]),
        ("conversations", totals["instructions"]),
        ("conversation rejects", totals["instruction_rejects"]),
    ]
    wall = seconds["total"] or 1e-9
    throughput = [(k, round(seconds[k], 2), f"{100 * seconds[k] / wall:.1f}%") for k in stages]
    rate = totals["rows"] / wall

    images = [p.name for p in sorted(figures.glob("*.png"))]
    md = [
        "# Unicorn run report",
        "",
        f"Config SHA-256 `{manifest['config_sha256'][:16]}`, {len(manifest['shards'])} shards, "
        f"{totals['rows']} rows at {rate:.2f} rows/s.",
        "",
        "## Counts",
        "",
        "| stage | count |",
        "|---|---|",
    ]
    md += [f"| {k} | {v} |" for k, v in counts]
    md += ["", "## Time per stage", "", "| stage | seconds | share |", "|---|---|---|"]
    md += [f"| {k} | {s} | {p} |" for k, s, p in throughput]
    md += [
        "",
        "## Diversity",
        "",
        "| set | " + " | ".join(next(iter(div.values()))) + " |",
        "|---" * (1 + len(next(iter(div.values())))) + "|",
    ]
    md += [f"| {k} | " + " | ".join(str(x) for x in v.values()) + " |" for k, v in div.items()]
    if gap:
        md += [
            "",
            "## Gap against real rendered images",
            "",
            "| embedding | cos_paired | centroid_gap | R@1 |",
            "|---|---|---|---|",
        ]
        md += [f"| {k} | {v['cos_paired']:.3f} | {v['centroid_gap']:.3f} | {v['r1']:.3f} |" for k, v in gap.items()]
    md += ["", "## Sample rows", "", "| id | provenance | caption | first turn |", "|---|---|---|---|"]
    md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in samples]
    md += ["", "## Plots", ""] + [f"![{n}](report/{n})" for n in images]
    (root / "report.md").write_text("\n".join(md) + "\n")

    def table(header, rows):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Unicorn run report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Unicorn run report</h1>",
        f"<p>{len(manifest['shards'])} shards, {totals['rows']} rows at {rate:.2f} rows/s.</p>",
        "<h2>Counts</h2>",
        table(["stage", "count"], counts),
        "<h2>Time per stage</h2>",
        table(["stage", "seconds", "share"], throughput),
        "<h2>Diversity</h2>",
        table(["set", *next(iter(div.values()))], [[k, *v.values()] for k, v in div.items()]),
    ]
    if gap:
        parts += [
            "<h2>Gap against real rendered images</h2>",
            table(
                ["embedding", "cos_paired", "centroid_gap", "R@1"],
                [[k, f"{v['cos_paired']:.3f}", f"{v['centroid_gap']:.3f}", f"{v['r1']:.3f}"] for k, v in gap.items()],
            ),
        ]
    parts += ["<h2>Sample rows</h2>", table(["id", "provenance", "caption", "first turn"], samples), "<h2>Plots</h2>"]
    parts += [f"<img src='report/{n}' alt='{n}'>" for n in images]
    # lets a headless browser report how many plots actually decoded (the report test reads it from the DOM)
    parts.append(
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-images-loaded', "
        "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length));</script>"
    )
    parts.append("</body></html>")
    path = root / "report.html"
    path.write_text("\n".join(parts))
    return path
