"""A VLM trained on text alone, tested on real images: the pipeline judged by what it is for.

    python bench/vlm.py [--seeds 800] [--test 1000] [--runs 3] [--steps 300,600] [--out DIR] [--ablations]

1. A real `unicorn run` over world seeds (LLM-free pieces: seed captions + programmatic conversations) and its
   `--format llava` export.
2. The same small VLM (`unicorn.vlm`, the LLaVA recipe) trained on that export with three kinds of image embedding
   per row: (a) real world-CLIP image embeddings of each row's rendered scene, (b) the raw text embeddings, (c) the
   pipeline's synthetic embeddings (the shipped `contrastive` projector).
3. Tested on `--test` rendered scenes never seen in training, from their real image embeddings: a generated caption
   parsed with the world's vocabulary against the scene graph (attribute precision, recall, F1; hallucination: the
   share of captions naming an object or attribute the scene lacks, `captions.scene_check`), and ProVision
   questions on the test scenes answered by the VLM (exact match, by question type).
Each source is trained from `--runs` seeds (ablations from `--ablation-runs`); the table gives the mean, the spread
(max - min, in points) and the share of (a). `--ablations` adds: projector `mean_shift` and `unicorn_released` in
place of `contrastive`, and the run with semantic dedup off (`dedup.threshold: 1.0`). `--llm-stages` adds the
pipeline's LLM stages, written by the embedded Gemma 3 270M on `--llm-seeds` of the same world seeds (a second run,
whose replies are cached in OUT): "+ LLM caption variants (stage 1)" (`captions.k: 2`, the LLM's conversations left
out of the export) and "+ LLM-written conversations (stage 2)" (`captions.k: 2`, `instruct.llm_share: 0.1`), each
beside the LLM-free run on the same seeds (`--min-fact-share` sets the variants' facts filter). Every run takes its
settings from configs/default.yaml (prompts, sampling, filters), with world:N seeds and the stages set as above.
Figures are printed and written to OUT/vlm_bench.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CAPTION_PROMPT = "Describe the image briefly."


def make_run(work: Path, seeds: int, name: str, overrides: dict | None = None, progress: bool = False) -> Path:
    """A `unicorn run` of the main job's config over `seeds` world seeds (LLM-free unless `overrides` say otherwise)
    and its llava export; both kept in `work`, so a second bench reuses them (and an interrupted LLM run resumes)."""
    from unicorn.exports import export_llava
    from unicorn.pipeline.config import load_config
    from unicorn.pipeline.run import run_pipeline

    # the main job's own config (configs/default.yaml: its prompts, sampling and filters), on world:N seeds
    sections = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    for key in ("ray", "threads"):
        sections.pop(key, None)
    sections.update(seeds={"source": f"world:{seeds}@11"}, shard_size=256)
    sections["captions"]["k"] = 0
    sections["instruct"]["llm_share"] = 0.0
    sections["embed"].update(projector=str(ROOT / "checkpoints" / "world-projector"), batch_size=256)
    for key, value in (overrides or {}).items():
        sections[key] = {**sections.get(key, {}), **value} if isinstance(value, dict) else value
    text = json.dumps(sections, indent=1, sort_keys=True)  # JSON is YAML
    name = f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"  # a changed config is a new run, never a reuse
    config = work / f"{name}.yaml"
    config.write_text(text)
    run = work / f"run-{name}"
    caches = sorted(work.glob(f"run-{name[:-9]}-*/cache.sqlite"), key=lambda p: p.stat().st_mtime)
    if not run.exists() and caches:
        # another config of the same run (a filter changed): its replies, keyed by request, cost nothing again
        from unicorn.pipeline.storage import RunFolder

        loaded = load_config(config)
        folder = RunFolder(run)
        folder.open(loaded.to_dict(), loaded.sha256(), restart=False)
        folder.close()
        shutil.copyfile(caches[-1], run / "cache.sqlite")
    if not (run / "manifest.json").is_file() or not json.loads((run / "manifest.json").read_text()).get("complete"):
        run_pipeline(load_config(config), run, progress=progress, log=print if progress else lambda m: None)
    export = work / f"export-{name}"
    if not export.is_dir():
        export_llava(run, export)
    return export


def export_digest(export: Path) -> str:
    """What a training's scores depend on besides its settings: the export's bytes."""
    digest = hashlib.sha256()
    for name in ("embeddings.npy", "llava.json", "pretrain.json"):
        digest.update((export / name).read_bytes())
    return digest.hexdigest()[:16]


def without_llm_conversations(export: Path, out: Path) -> Path:
    """A copy of an export whose LLM-written conversations are left out (caption rows and embeddings kept)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("embedding_ids.json", "pretrain.json", "embeddings.npy"):
        (out / name).write_bytes((export / name).read_bytes())
    rows = json.loads((export / "llava.json").read_text())
    (out / "llava.json").write_text(json.dumps([r for r in rows if r.get("source") != "llm"]))
    return out


def with_embeddings(export: Path, embeddings: np.ndarray, out: Path) -> Path:
    """A copy of an export whose embeddings are replaced (same rows, same order)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("embedding_ids.json", "llava.json", "pretrain.json"):
        (out / name).write_bytes((export / name).read_bytes())
    np.save(out / "embeddings.npy", np.ascontiguousarray(embeddings, np.float32))
    return out


def run_rows(export: Path, run: Path) -> tuple[list[str], list[dict]]:
    """(row ids in export order, the scene of each row)."""
    from unicorn.context import RowContext
    from unicorn.pipeline.storage import iter_shards

    ids = json.loads((export / "embedding_ids.json").read_text())
    scenes = {}
    for shard in iter_shards(run):
        for row_id, scene in zip(shard.metadata["id"], shard.metadata["scene"], strict=True):
            scenes[row_id] = RowContext.decode(scene).data
    return ids, [scenes[i] for i in ids]


def text_embeddings(run: Path) -> np.ndarray:
    from unicorn.pipeline.storage import iter_shards

    return np.concatenate([s.text_emb.astype(np.float32) for s in iter_shards(run)])


def evaluate(model, tok, scenes: list[dict], embeddings: np.ndarray, questions: list[tuple[int, object]]) -> dict:
    from unicorn.captions.scene_check import ATTRIBUTES, check_caption, claims
    from unicorn.vlm import generate

    captions = generate(model, tok, embeddings, CAPTION_PROMPT, max_tokens=40)
    tp = n_claimed = n_truth = hallucinated = 0
    for caption, scene in zip(captions, scenes, strict=True):
        truth = {(a, o[a]) for o in scene["objects"] for a in ATTRIBUTES}
        said = claims(caption)
        tp, n_claimed, n_truth = tp + len(said & truth), n_claimed + len(said), n_truth + len(truth)
        check = check_caption(caption, scene)
        hallucinated += bool(check is not None and check.wrong)
    precision, recall = tp / max(n_claimed, 1), tp / max(n_truth, 1)
    answers = generate(model, tok, embeddings[[i for i, _ in questions]], [qa.question for _, qa in questions],
                       max_tokens=8)  # fmt: skip
    by_kind: dict = defaultdict(list)
    for answer, (_, qa) in zip(answers, questions, strict=True):
        by_kind[qa.kind].append(answer.strip(" .").lower() == qa.answer.strip(" .").lower())
    every = [x for v in by_kind.values() for x in v]
    return {
        "attribute_precision": precision,
        "attribute_recall": recall,
        "attribute_f1": 2 * precision * recall / max(precision + recall, 1e-9),
        "hallucination": hallucinated / len(captions),
        "vqa": sum(every) / len(every),
        "vqa_by_kind": {k: sum(v) / len(v) for k, v in sorted(by_kind.items())},
        "example_caption": captions[0],
        "example_answer": (questions[0][1].question, answers[0], questions[0][1].answer),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=800, help="world seeds in the training run")
    parser.add_argument("--test", type=int, default=1000, help="held-out rendered scenes")
    parser.add_argument("--runs", type=int, default=3, help="training seeds per source")
    parser.add_argument("--steps", default="300,600", help="stage 1 and stage 2 steps")
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--ablation-runs", type=int, default=1, help="training seeds per ablation source")
    parser.add_argument("--llm-stages", action="store_true", help="add the rows of the pipeline's LLM stages")
    parser.add_argument("--llm-seeds", type=int, default=None, help="world seeds in the LLM runs (default: --seeds)")
    parser.add_argument("--min-fact-share", type=float, default=0.0, help="captions.min_fact_share of the LLM run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import torch

    from modality_transfer import create_projector
    from unicorn.encoders import create_encoder
    from unicorn.instruct.programs import generate as ask
    from unicorn.instruct.programs import things_from_scene, world_vocab
    from unicorn.vlm import TrainConfig, train_vlm
    from unicorn.world import render, sample_scenes
    from unicorn.world.downstream import FIT_START, TEST_START, embed_scenes
    from unicorn.world.scene import SceneGraph

    started = time.perf_counter()
    work = Path(args.out or tempfile.mkdtemp(prefix="unicorn-vlm-"))
    work.mkdir(parents=True, exist_ok=True)
    encoder = create_encoder("world")
    export = make_run(work, args.seeds, "base")
    ids, scenes = run_rows(export, work / export.name.replace("export-", "run-", 1))
    real = encoder.encode_image([render(SceneGraph.from_dict(s)) for s in scenes], progress=False)
    text = text_embeddings(work / export.name.replace("export-", "run-", 1))
    synthetic = np.load(export / "embeddings.npy")
    sources = {"real": real, "raw_text": text, "synthetic (contrastive)": synthetic}
    if args.ablations:
        fit_img, fit_txt = embed_scenes(encoder, sample_scenes(2000, seed=0, start=FIT_START), 0)
        sources["mean_shift"] = create_projector("mean_shift").fit(fit_txt, fit_img).transform(text)
        sources["unicorn_released"] = create_projector("unicorn_released").fit(text).transform(text)
    print(f"training rows: {len(ids)} ({args.seeds} world seeds); sources: {', '.join(sources)}", flush=True)
    if args.llm_stages:  # first: the long part, and the one that can fail
        # the same seeds with and without the LLM, so each row differs from the one above it by one stage
        n = args.llm_seeds or args.seeds
        base = export if n == args.seeds else make_run(work, n, f"base-{n}")
        # shards of 32: an interrupted LLM run resumes losing at most one shard of replies
        # the stages as the main job had them on (configs/default.yaml names the values), min_fact_share as given
        stages = {"captions": {"k": 2, "min_fact_share": args.min_fact_share}, "instruct": {"llm_share": 0.1}}
        llm = make_run(work, n, f"llm-default-{n}", {**stages, "shard_size": 32}, progress=True)
        stage1 = without_llm_conversations(llm, work / f"{llm.name}-stage1")
        manifest = json.loads((work / llm.name.replace("export-", "run-", 1) / "manifest.json").read_text())
        llm_run = {"totals": manifest["totals"], "wall_seconds": manifest.get("wall_seconds")}
        print(f"LLM run over {n} seeds: {manifest['totals']['rows']} rows, {manifest['totals']['instructions']} "
              f"conversations in {manifest.get('wall_seconds', 0):.0f} s", flush=True)  # fmt: skip

    test_scenes = sample_scenes(args.test, seed=0, start=TEST_START)
    test_dicts = [s.to_dict() for s in test_scenes]
    test_emb = encoder.encode_image([render(s) for s in test_scenes], progress=False)
    rng = np.random.default_rng(0)
    questions = [(i, qa) for i, s in enumerate(test_scenes)
                 for qa in ask(things_from_scene(s), rng, vocab=world_vocab(), per_scene=2)]  # fmt: skip
    s1, s2 = (int(x) for x in args.steps.split(","))

    def train_and_test(name: str, exp: Path, runs: int | None = None) -> list[dict]:
        results = []
        for seed in range(runs or args.runs):
            # each training's scores kept in OUT, so a bench run again (or interrupted) trains only what is missing
            done = work / "scores" / f"{export_digest(exp)}-seed{seed}-{s1}-{s2}-{args.test}.json"
            if done.is_file():
                scores = json.loads(done.read_text())
            else:
                model, tok, history = train_vlm(exp, None, TrainConfig(seed=seed, stage1_steps=s1, stage2_steps=s2),
                                                progress=False)  # fmt: skip
                scores = evaluate(model, tok, test_dicts, test_emb, questions)
                scores["train_seconds"], scores["tok_s"] = history["seconds"], history["tokens_per_second"]
                done.parent.mkdir(exist_ok=True)
                done.write_text(json.dumps(scores, default=str))
            results.append(scores)
            print(f"  {name} seed {seed}: F1 {scores['attribute_f1']:.3f} hall {scores['hallucination']:.3f} "
                  f"VQA {scores['vqa']:.3f} ({scores['train_seconds']:.0f} s, {scores['tok_s']:.0f} tok/s)",
                  flush=True)  # fmt: skip
        return results

    report = {"config": vars(args), "rows": len(ids), "sources": {}}
    if args.llm_stages:
        report["llm_run"] = llm_run
    main_sources = ("real", "raw_text", "synthetic (contrastive)")
    for name, emb in sources.items():
        runs = None if name in main_sources else args.ablation_runs
        report["sources"][name] = train_and_test(name, with_embeddings(export, emb, work / f"export-{name}"), runs)
    if args.ablations:
        no_dedup = make_run(work, args.seeds, "no-dedup", {"dedup": {"threshold": 1.0}})
        name = "synthetic, semantic dedup off"
        report["sources"][name] = train_and_test(name, no_dedup, args.ablation_runs)
    if args.llm_stages:
        for name, exp in ((f"seed captions + programs ({n} seeds)", base),
                          (f"+ LLM caption variants (stage 1, {n} seeds)", stage1),
                          (f"+ LLM-written conversations (stage 2, {n} seeds)", llm)):  # fmt: skip
            if n == args.seeds and exp is base:
                continue  # the synthetic (contrastive) row above is this row
            report["sources"][name] = train_and_test(name, exp)
    torch.set_num_threads(2)

    real_mean = {k: np.mean([r[k] for r in report["sources"]["real"]]) for k in ("attribute_f1", "vqa")}
    print(f"\n{'source':<50} {'attr F1':>12} {'share':>7} {'halluc.':>12} {'VQA EM':>12} {'share':>7}")
    for name, runs in report["sources"].items():
        f1, hall, vqa = ([r[k] for r in runs] for k in ("attribute_f1", "hallucination", "vqa"))
        print(f"{name:<50} {np.mean(f1):.3f} ({100 * (max(f1) - min(f1)):.1f}) "
              f"{100 * np.mean(f1) / max(real_mean['attribute_f1'], 1e-9):6.1f}% "
              f"{np.mean(hall):.3f} ({100 * (max(hall) - min(hall)):.1f}) "
              f"{np.mean(vqa):.3f} ({100 * (max(vqa) - min(vqa)):.1f}) "
              f"{100 * np.mean(vqa) / max(real_mean['vqa'], 1e-9):6.1f}%")  # fmt: skip
    for name in ("real", "synthetic (contrastive)"):
        first = report["sources"][name][0]
        question, answer, truth = first["example_answer"]
        print(
            f"\n{name}, seed 0, on test scene 0 (real image embedding):\n  caption: {first['example_caption']}\n"
            f"  Q: {question}  A: {answer}  (truth: {truth})"
        )
    print(f"\ntest scene 0: {test_dicts[0]}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    (work / "vlm_bench.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"\n{report['seconds']:.0f} s in all; {work / 'vlm_bench.json'}")


if __name__ == "__main__":
    main()
