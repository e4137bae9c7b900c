"""The end-to-end proof: downstream models trained on synthetic image embeddings made from text, tested on
embeddings of real rendered images they never saw.

The same small model is trained three ways (on real image embeddings, the upper bound; on raw text
embeddings; on each projector's synthetic image embeddings) and tested on held-out image embeddings.
Tasks: shape, colour, size and texture of a lone object; the object count of a scene; and visual
question answering over ProVision-style questions (question embedding + image embedding in, answer out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from modality_transfer import create_projector, list_projectors, load_projector

from ..encoders.base import Encoder
from ..errors import InputError
from ..instruct.programs import generate, things_from_scene, world_vocab
from .caption import captions
from .render import render
from .scene import SceneGraph, WorldConfig, sample_scenes

# Disjoint stretches of each seed's scene stream: world-CLIP trains on 0.. and evaluates on 10M..
FIT_START, TRAIN_START, TEST_START = 20_000_000, 30_000_000, 40_000_000
ATTRIBUTES = ("shape", "colour", "size", "texture")
TASKS = (*ATTRIBUTES, "count", "vqa")


def default_projectors() -> tuple[str, ...]:
    """Every projector but identity, which is the raw-text column."""
    return tuple(p for p in list_projectors() if p != "identity")


@dataclass(frozen=True)
class BenchConfig:
    fit_scenes: int = 2000  # paired scenes the projectors are fitted on
    train_scenes: int = 2000  # per scene family (lone objects; 1-4 objects)
    test_scenes: int = 1000
    questions_per_scene: int = 4
    epochs: int = 40
    hidden: int = 256
    seed: int = 0
    downstream_seeds: int = 3  # each downstream model is trained this many times (seed, seed + 1, ...)
    train_noise: float = 0.0  # CapDec-style noise on the downstream model's inputs, for every source but real
    projectors: tuple[str, ...] = field(default_factory=lambda: default_projectors())

    def __post_init__(self) -> None:
        for name in (
            "fit_scenes",
            "train_scenes",
            "test_scenes",
            "questions_per_scene",
            "epochs",
            "hidden",
            "downstream_seeds",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.train_noise <= 10:
            raise InputError(f"train_noise must be in [0, 10], got {self.train_noise}")
        known = list_projectors()
        for p in self.projectors:
            if p not in known and not Path(p).is_dir():
                raise InputError(f"unknown projector '{p}'; choose from {', '.join(known)}, or a fitted folder")


def embed_scenes(encoder: Encoder, scenes: list[SceneGraph], seed: int, size: int = 64):
    """(image embeddings of the rendered scenes, text embeddings of one dense caption each)."""
    texts = [per[0] for per in captions(scenes, seed=seed, per_scene=1, style="dense")]
    images = encoder.encode_image([render(s, size) for s in scenes])
    return images, encoder.encode_text(texts)


def train_classifier(
    x: np.ndarray, y: np.ndarray, classes: int, *, hidden: int, epochs: int, seed: int, noise: float = 0.0
):
    """A one-hidden-layer MLP, trained full-batch-shuffled with AdamW; deterministic under `seed`.

    `noise` adds fresh Gaussian noise of that std to every training batch (CapDec's training-time noise, applied
    by the downstream trainer rather than baked into the projected embeddings).
    """
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(128):
            batch = xt[idx]
            if noise:
                batch = batch + noise * torch.randn(batch.shape, generator=g)
            loss = F.cross_entropy(model(batch), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    with torch.inference_mode():
        return float((model(torch.from_numpy(x).float()).argmax(1).numpy() == y).mean())


def _vqa_rows(scenes, seed: int, per_scene: int):
    """(scene index, question, answer) for ProVision-style questions about each scene."""
    rows = []
    vocab = world_vocab()
    for k, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, k, 2])
        rows += [
            (k, q.question, q.answer) for q in generate(things_from_scene(scene), rng, vocab=vocab, per_scene=per_scene)
        ]
    return rows


def _vqa_features(scene_emb: np.ndarray, rows, question_emb: dict[str, np.ndarray]) -> np.ndarray:
    img = scene_emb[[r[0] for r in rows]]
    q = np.stack([question_emb[r[1]] for r in rows])
    return np.concatenate([img, q, img * q], axis=1)


def world_bench(encoder: Encoder, config: BenchConfig, *, log=print) -> dict:
    """Run every task for real, raw text and each projector; returns {"tasks": {task: {source: accuracy}}, ...}."""
    seed = config.seed
    lone = WorldConfig(min_objects=1, max_objects=1)
    log(f"embedding scenes with {encoder.spec}")
    fit_img, fit_txt = embed_scenes(encoder, sample_scenes(config.fit_scenes, seed=seed, start=FIT_START), seed)
    sets = {}
    for family, world in (("lone", lone), ("multi", None)):
        train = sample_scenes(config.train_scenes, seed=seed, config=world, start=TRAIN_START)
        test = sample_scenes(config.test_scenes, seed=seed, config=world, start=TEST_START)
        sets[family] = (train, test, *embed_scenes(encoder, train, seed), embed_scenes(encoder, test, seed)[0])

    sources = {"real": None, "raw_text": None}
    for name in config.projectors:
        if name not in list_projectors():  # a fitted projector folder (`unicorn gap fit`), used as it is
            sources[name] = load_projector(name)
            continue
        params = {"seed": seed} if name in ("noise", "contrastive") else {}
        sources[name] = create_projector(name, **params).fit(fit_txt, fit_img)

    def inputs(source: str, family: str) -> np.ndarray:
        _, _, img, txt, _ = sets[family]
        if source == "real":
            return img
        return txt if source == "raw_text" else sources[source].transform(txt)

    labels = {}
    train, test = sets["lone"][0], sets["lone"][1]
    for attr in ATTRIBUTES:
        values = sorted({getattr(s.objects[0], attr) for s in train + test})
        labels[attr] = (
            "lone",
            values,
            [[values.index(getattr(s.objects[0], attr)) for s in part] for part in (train, test)],
        )
    train, test = sets["multi"][0], sets["multi"][1]
    counts = sorted({len(s.objects) for s in train + test})
    labels["count"] = ("multi", counts, [[counts.index(len(s.objects)) for s in part] for part in (train, test)])

    # The downstream model is trained from several seeds, so that a one-point difference between projectors
    # can be read against the spread a seed alone makes.
    downstream = range(seed, seed + config.downstream_seeds)

    def scores(source, x, ytrain, xtest, ytest, classes, hidden) -> list[float]:
        """Test accuracy of the downstream model trained on `x` from each downstream seed."""
        noise = 0.0 if source == "real" else config.train_noise
        return [
            round(
                accuracy(
                    train_classifier(x, ytrain, classes, hidden=hidden, epochs=config.epochs, seed=k, noise=noise),
                    xtest,
                    ytest,
                ),
                4,
            )
            for k in downstream
        ]

    per_seed: dict[str, dict[str, list[float]]] = {}
    for task, (family, values, (ytrain, ytest)) in labels.items():
        ytrain, ytest = np.array(ytrain), np.array(ytest)
        test_img = sets[family][4]
        per_seed[task] = {}
        for source in sources:
            x = inputs(source, family)
            per_seed[task][source] = scores(source, x, ytrain, test_img, ytest, len(values), config.hidden)
        log(f"{task}: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in per_seed[task].items()))

    train_rows = _vqa_rows(sets["multi"][0], seed, config.questions_per_scene)
    test_rows = _vqa_rows(sets["multi"][1], seed + 1, config.questions_per_scene)
    answers = sorted({r[2] for r in train_rows})
    test_rows = [r for r in test_rows if r[2] in answers]
    questions = sorted({r[1] for r in train_rows + test_rows})
    question_emb = dict(zip(questions, encoder.encode_text(questions), strict=True))
    ytrain = np.array([answers.index(r[2]) for r in train_rows])
    ytest = np.array([answers.index(r[2]) for r in test_rows])
    test_x = _vqa_features(sets["multi"][4], test_rows, question_emb)
    per_seed["vqa"] = {}
    for source in sources:
        x = _vqa_features(inputs(source, "multi"), train_rows, question_emb)
        per_seed["vqa"][source] = scores(source, x, ytrain, test_x, ytest, len(answers), 2 * config.hidden)
    log("vqa: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in per_seed["vqa"].items()))

    results = {task: {src: round(float(np.mean(v)), 4) for src, v in accs.items()} for task, accs in per_seed.items()}
    spread = {task: {src: round(max(v) - min(v), 4) for src, v in accs.items()} for task, accs in per_seed.items()}

    return {
        "encoder": encoder.spec,
        "config": asdict(config),
        "sizes": {
            "vqa_train_questions": len(train_rows),
            "vqa_test_questions": len(test_rows),
            "vqa_answers": len(answers),
        },
        "tasks": results,  # mean accuracy over the downstream seeds
        "summary": summarise(results),
        "downstream_seeds": list(downstream),
        "per_seed": per_seed,
        "spread": spread,  # max - min accuracy over the downstream seeds
        "worst_task": worst_tasks(results),
    }


def worst_tasks(results: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Per source (raw text and each projector): the task where it reaches the smallest share of real accuracy.

    This is what a user who picks one projector for every task gets at worst.
    """
    sources = [s for s in next(iter(results.values())) if s != "real"]
    out = {}
    for source in sources:
        shares = {t: accs[source] / accs["real"] if accs["real"] > 0 else 0.0 for t, accs in results.items()}
        task = min(shares, key=shares.get)
        out[source] = {"task": task, "share_of_real": round(shares[task], 4)}
    return out


def summarise(results: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Per task: the best projector, its share of the real-image accuracy and its margin over raw text."""
    out = {}
    for task, accs in results.items():
        projectors = {k: v for k, v in accs.items() if k not in ("real", "raw_text")}
        if not projectors:
            continue
        best = max(projectors, key=projectors.get)
        share = projectors[best] / accs["real"] if accs["real"] > 0 else 0.0
        out[task] = {
            "best": best,
            "share_of_real": round(share, 4),
            "margin_over_raw_text": round(projectors[best] - accs["raw_text"], 4),
            "meets_90pct": share >= 0.9,
            "meets_95pct": share >= 0.95,
        }
    return out


def format_table(report: dict) -> str:
    """The results as a fixed-width table, one row per task, then the verdict per task."""
    tasks = report["tasks"]
    sources = list(next(iter(tasks.values())))
    width = max(10, *(len(s) for s in sources))
    lines = ["task".ljust(9) + "".join(s.rjust(width + 1) for s in sources)]
    for task, accs in tasks.items():
        lines.append(task.ljust(9) + "".join(f"{accs[s]:.3f}".rjust(width + 1) for s in sources))
    spread = report.get("spread")
    if spread:
        lines.append("")
        lines.append(f"spread (max - min over {len(report['downstream_seeds'])} downstream seeds)")
        for task, accs in spread.items():
            lines.append(task.ljust(9) + "".join(f"{accs[s]:.3f}".rjust(width + 1) for s in sources))
    worst = report.get("worst_task")
    if worst:
        lines.append("")
        lines.append(
            "worst task as a share of real: "
            + ", ".join(f"{src} {100 * w['share_of_real']:.1f}% ({w['task']})" for src, w in worst.items())
        )
    lines.append("")
    for task, s in report["summary"].items():
        verdict = "meets" if s["meets_95pct"] else "MISSES"
        lines.append(
            f"{task}: best projector {s['best']} reaches {100 * s['share_of_real']:.1f}% of real "
            f"({verdict} the 95% bar), {s['margin_over_raw_text']:+.3f} over raw text"
        )
    return "\n".join(lines)


def markdown_table(report: dict) -> str:
    """One row per source, one column per task: share of real accuracy (mean over downstream seeds) and the spread
    of the source's accuracy over those seeds, in points; then the source's worst task. Real's row gives accuracy."""
    tasks = report["tasks"]
    sources = list(next(iter(tasks.values())))
    spread = report.get("spread", {t: dict.fromkeys(sources, 0.0) for t in tasks})
    worst = report.get("worst_task") or worst_tasks(tasks)
    lines = [
        "| source | " + " | ".join(tasks) + " | worst task |",
        "|---" * (len(tasks) + 2) + "|",
    ]
    for source in sources:
        if source == "real":
            cells = [f"{tasks[t]['real']:.3f} ({100 * spread[t]['real']:.1f})" for t in tasks]
            lines.append("| real (accuracy) | " + " | ".join(cells) + " | |")
            continue
        cells = [f"{100 * tasks[t][source] / tasks[t]['real']:.1f}% ({100 * spread[t][source]:.1f})" for t in tasks]
        w = worst[source]
        lines.append(f"| {source} | " + " | ".join(cells) + f" | {w['task']} {100 * w['share_of_real']:.1f}% |")
    return "\n".join(lines)
