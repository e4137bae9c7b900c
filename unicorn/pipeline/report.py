"""`report.html` and `report.md` for a run, rendered from its RunSummary (`summary.py`): counts through every
stage and filter, time per step, diversity, the gap table with what each column means, sample rows of every
provenance, programmatic and LLM-written conversations, the top reject reasons with examples, and PNG plots
(caption lengths, a 2-D PCA of the embeddings, the projector's gap metrics)."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .summary import RunSummary, summarise_run  # noqa: E402

STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%;margin:1em 0}"
)
COLOURS = {"text": "tab:blue", "synthetic image": "tab:orange", "real image": "tab:green"}


def write_report(root: str | Path, *, encoder=None) -> Path:
    """Write the report into `root` (plots under `root/report/`); returns the HTML path."""
    root = Path(root)
    summary = summarise_run(root, encoder=encoder)
    figures = root / "report"
    figures.mkdir(exist_ok=True)
    plot(summary, figures)
    images = [p.name for p in sorted(figures.glob("*.png"))]
    (root / "report.md").write_text(markdown(summary, images))
    path = root / "report.html"
    path.write_text(page(summary, images))
    return path


def plot(s: RunSummary, figures: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, rows in (("seed", s.seed_captions), ("LLM", s.llm_captions)):
        if rows:
            ax.hist([len(r.split()) for r in rows], bins=20, alpha=0.6, label=f"{name} ({len(rows)})")
    ax.set_xlabel("words per caption")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figures / "caption_lengths.png", dpi=110)
    plt.close(fig)
    if len(s.embeddings["text"]) >= 3:
        allv = np.concatenate(list(s.embeddings.values()))
        mean = allv.mean(0)
        _, _, vt = np.linalg.svd(allv - mean, full_matrices=False)
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for label, emb in s.embeddings.items():
            p = (emb - mean) @ vt[:2].T
            ax.scatter(p[:, 0], p[:, 1], s=6, alpha=0.6, label=f"{label} ({len(emb)})", color=COLOURS[label])
        ax.set_title("PCA of the run's embeddings")
        ax.legend()
        fig.tight_layout()
        fig.savefig(figures / "embeddings_pca.png", dpi=110)
        plt.close(fig)
    if s.gap:
        fig, axes = plt.subplots(1, 3, figsize=(8, 3))
        for ax, metric in zip(axes, ["cos_paired", "centroid_gap", "r1"], strict=True):
            ax.bar(list(s.gap), [s.gap[k][metric] for k in s.gap], color=["tab:blue", "tab:orange"])
            ax.set_title(metric)
        fig.suptitle("synthetic vs raw text, measured against real rendered images")
        fig.tight_layout()
        fig.savefig(figures / "gap_metrics.png", dpi=110)
        plt.close(fig)


GAP_COLUMNS = [
    ("cos_paired", "higher is better", "mean cosine between a row's embedding and the real image of its own scene"),
    ("centroid_gap", "lower is better", "distance between the mean of the embeddings and the mean of the real images"
     " (the modality gap, Liang et al. 2022)"),
    ("R@1", "higher is better", "share of rows whose nearest real image (by cosine, among these rows' images) is "
     "their own"),
]  # fmt: skip
GAP_NOTE = (
    "Each row's world scene is rendered and embedded by the encoder's image tower: the real image the synthetic "
    "embedding stands in for. 'raw text' is the caption's text embedding as it is; 'synthetic' is it after the "
    "projector, which is what the run writes to image_emb/."
)
SAMPLE_HEADER = ["id", "provenance", "persona", "caption"]
CONVERSATION_HEADER = ["written by", "row", "first turns"]
REJECT_HEADER = ["stage", "reason", "count", "example"]
GROUNDING_HEADER = ["LLM captions", "checked", "hallucinated", "wrong mentions / caption", "coverage"]
GROUNDING_NOTE = (
    "Each LLM caption's mentions of shapes, colours, sizes, textures, numbers and relations (world scenes; category "
    "nouns for COCO-style instances) checked against its scene. Hallucinated: names at least one thing the scene "
    "lacks (lower is better). Coverage: share of the scene's objects the caption names (higher is better)."
)


def _gap_rows(s: RunSummary) -> list[list[str]]:
    return [[k, f"{v['cos_paired']:.3f}", f"{v['centroid_gap']:.3f}", f"{v['r1']:.3f}"] for k, v in s.gap.items()]


def markdown(s: RunSummary, images: list[str]) -> str:
    def table(header, rows):
        lines = ["| " + " | ".join(map(str, header)) + " |", "|---" * len(header) + "|"]
        return lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]

    div_header = ["set", *next(iter(s.diversity.values()))]
    md = ["# Unicorn run report", "", f"{s.shards} shards, {s.rows} rows at {s.rows_per_second:.2f} rows/s.", ""]
    md += ["## What the figures cover", "", *table(["figure", "covers"], s.coverage), ""]
    md += ["## Counts", "", *table(["stage", "count"], s.counts), ""]
    md += ["## Time per stage", "", *table(["step", "seconds", "share"], s.seconds), ""]
    md += ["## Diversity", "", *table(div_header, [[k, *v.values()] for k, v in s.diversity.items()]), ""]
    if s.gap:
        md += ["## Gap against real rendered images", ""]
        md += [GAP_NOTE, "", *table(["embedding", "cos_paired", "centroid_gap", "R@1"], _gap_rows(s)), ""]
        md += [*table(["column", "direction", "what it measures"], GAP_COLUMNS), ""]
    if s.grounding:
        md += ["## Scene grounding", "", GROUNDING_NOTE, "", *table(GROUNDING_HEADER, s.grounding), ""]
    md += ["## Sample rows", "", *table(SAMPLE_HEADER, s.samples), ""]
    md += ["## Sample conversations", "", *table(CONVERSATION_HEADER, s.conversations), ""]
    md += ["## Top reject reasons", "", *table(REJECT_HEADER, s.rejects), ""]
    md += ["## Plots", ""] + [f"![{n}](report/{n})" for n in images]
    return "\n".join(md) + "\n"


def page(s: RunSummary, images: list[str]) -> str:
    def table(header, rows):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Unicorn run report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Unicorn run report</h1>",
        f"<p>{s.shards} shards, {s.rows} rows at {s.rows_per_second:.2f} rows/s.</p>",
        "<h2>What the figures cover</h2>",
        table(["figure", "covers"], s.coverage),
        "<h2>Counts</h2>",
        table(["stage", "count"], s.counts),
        "<h2>Time per stage</h2>",
        table(["step", "seconds", "share"], s.seconds),
        "<h2>Diversity</h2>",
        table(["set", *next(iter(s.diversity.values()))], [[k, *v.values()] for k, v in s.diversity.items()]),
    ]
    if s.gap:
        parts += [
            "<h2>Gap against real rendered images</h2>",
            f"<p>{html.escape(GAP_NOTE)}</p>",
            table(["embedding", "cos_paired", "centroid_gap", "R@1"], _gap_rows(s)),
            table(["column", "direction", "what it measures"], GAP_COLUMNS),
        ]
    if s.grounding:
        parts += [
            "<h2>Scene grounding</h2>",
            f"<p>{html.escape(GROUNDING_NOTE)}</p>",
            table(GROUNDING_HEADER, s.grounding),
        ]
    parts += [
        "<h2>Sample rows</h2>",
        table(SAMPLE_HEADER, s.samples),
        "<h2>Sample conversations</h2>",
        table(CONVERSATION_HEADER, s.conversations),
        "<h2>Top reject reasons</h2>",
        table(REJECT_HEADER, s.rejects),
        "<h2>Plots</h2>",
    ]
    parts += [f"<img src='report/{n}' alt='{n}'>" for n in images]
    # lets a headless browser report how many plots actually decoded (the report test reads it from the DOM)
    parts.append(
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-images-loaded', "
        "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length));</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
