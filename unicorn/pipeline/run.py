"""`run_pipeline`: seeds -> captions -> instructions -> text embeddings -> synthetic image embeddings -> shards.

Seeds are cut into shards of `shard_size`; each shard passes through every stage and is written whole, so
memory stays flat as the input grows and a killed run resumes at the first missing shard. Dedup state is
rebuilt from the finished shards on resume, so a resumed run writes exactly the rows a clean run writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from modality_transfer import load_projector

from ..captions.dedup import SemanticDedup, exact_duplicates
from ..captions.diversify import diversify, stable_int
from ..captions.filters import FilterConfig, apply_filters, funnel_counts
from ..captions.prompts import load_lines, load_text
from ..encoders import create_encoder
from ..errors import InputError
from ..instruct.from_programs import program_conversations
from ..instruct.writer import write_conversations
from ..llm import create_llm
from ..seeds import read_seeds
from .config import RunConfig
from .storage import RunFolder


class Timed:
    """Wraps an encoder and adds the seconds its calls take to a shared clock."""

    def __init__(self, encoder, clock: Counter, name: str) -> None:
        self._encoder, self._clock, self._name = encoder, clock, name
        self.dim, self.spec = encoder.dim, encoder.spec

    def encode_text(self, texts, **kw):
        start = time.perf_counter()
        try:
            return self._encoder.encode_text(texts, **kw)
        finally:
            self._clock[self._name] += time.perf_counter() - start


class Pipeline:
    """The models and dedup state one run needs, and the stage functions over one shard."""

    def __init__(self, config: RunConfig, cache: Path) -> None:
        c = config.captions
        self.config = config
        self.clock: Counter = Counter()
        self.template = load_text(c.prompt, fields=("seed", "persona"))
        self.personas = load_lines(c.personas)
        self.projector = load_projector(config.embed.projector)
        self.encoder = Timed(create_encoder(config.embed.encoder), self.clock, "encoder")
        if self.projector.dim != self.encoder.dim:
            raise InputError(
                f"projector {config.embed.projector} maps {self.projector.dim}-d embeddings but encoder "
                f"{config.embed.encoder} makes {self.encoder.dim}-d ones"
            )
        self.filter_encoder = Timed(create_encoder(c.filter_encoder), self.clock, "encoder")
        self.llm = create_llm(c.llm, cache=cache) if c.k or config.instruct.llm_share else None
        self.filters = FilterConfig(min_faithfulness=c.min_faithfulness, judge=c.judge)
        self.seen: set[str] = set()
        self.semantic = SemanticDedup(self.filter_encoder.dim, c.dedup_threshold)

    def remember(self, captions: list[str]) -> None:
        """Feed finished shards' captions to the dedup state (on resume)."""
        if captions:
            exact_duplicates(captions, self.seen)
            self.semantic.duplicates(self.filter_encoder.encode_text(captions))

    def shard(self, seeds: list[dict]) -> tuple[dict, np.ndarray, np.ndarray, list[dict], dict]:
        config, c = self.config, self.config.captions
        stats: Counter = Counter(seeds=len(seeds))
        rows = []
        if c.include_seeds:
            rows += [
                {
                    "id": f"{s['id']}#seed",
                    "seed_id": s["id"],
                    "seed": s["text"],
                    "caption": s["text"],
                    "provenance": "seed",
                    "persona": None,
                    "faithfulness": 1.0,
                    "scene": s.get("scene"),
                }
                for s in seeds
            ]
        funnel = {}
        if c.k:
            batch = {"id": [s["id"] for s in seeds], "text": [s["text"] for s in seeds]}
            variants = diversify(
                batch,
                self.llm,
                k=c.k,
                template=self.template,
                personas=self.personas,
                seed=config.seed,
                max_tokens=c.max_tokens,
                temperature=c.temperature,
            )
            scored = apply_filters(variants, self.filters, encoder=self.filter_encoder, judge=self.llm)
            funnel = funnel_counts(scored["reject"])
            scenes = {s["id"]: s.get("scene") for s in seeds}
            for i, reject in enumerate(scored["reject"]):
                if reject is None:
                    rows.append(
                        {
                            "id": scored["id"][i],
                            "seed_id": scored["seed_id"][i],
                            "seed": scored["seed"][i],
                            "caption": scored["caption"][i],
                            "provenance": f"llm:{self.llm.spec}",
                            "persona": scored["persona"][i],
                            "faithfulness": scored["faithfulness"][i],
                            "scene": scenes[scored["seed_id"][i]],
                        }
                    )
            stats["variants"] = len(scored["id"])
        stats.update({f"filter_{k}": v for k, v in funnel.items()})
        exact = exact_duplicates([r["caption"] for r in rows], self.seen)
        rows = [r for r, dup in zip(rows, exact, strict=True) if not dup]
        stats["dedup_exact"] = sum(exact)
        semantic = (
            self.semantic.duplicates(self.filter_encoder.encode_text([r["caption"] for r in rows])) if rows else []
        )
        rows = [r for r, dup in zip(rows, semantic, strict=True) if not dup]
        stats["dedup_semantic"] = sum(semantic)

        instructions, rejects = self.instructions(rows)
        stats["instructions"] = len(instructions)
        stats["instruction_rejects"] = len(rejects)
        captions = [r["caption"] for r in rows]
        text_emb = (
            self.encoder.encode_text(captions, batch_size=config.embed.batch_size)
            if rows
            else np.zeros((0, self.encoder.dim), np.float32)
        )
        start = time.perf_counter()
        image_emb = self.projector.transform(text_emb) if rows else text_emb
        self.clock["projector"] += time.perf_counter() - start
        stats["rows"] = len(rows)
        metadata = {
            "id": [r["id"] for r in rows],
            "seed_id": [r["seed_id"] for r in rows],
            "caption": captions,
            "provenance": [r["provenance"] for r in rows],
            "persona": [r["persona"] for r in rows],
            "faithfulness": [r["faithfulness"] for r in rows],
            "scene": [json.dumps(r["scene"]) if r["scene"] else None for r in rows],
        }
        return metadata, text_emb, image_emb, instructions, dict(stats) | {"rejects": rejects}

    def instructions(self, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        inst = self.config.instruct
        out, rejects = [], []
        if inst.programs:
            with_scene = [{"id": r["id"], "scene": r["scene"]} for r in rows if r["scene"]]
            made, failed = program_conversations(with_scene, seed=self.config.seed, turns=inst.turns)
            out += [{**m, "id": f"{m['id']}#programs", "image": m["id"]} for m in made]
            rejects += failed
        chosen = [r for r in rows if stable_int(self.config.seed, r["id"], "llm") % 10_000 < inst.llm_share * 10_000]
        if chosen:
            batch = {"id": [r["id"] for r in chosen], "caption": [r["caption"] for r in chosen]}
            made, failed = write_conversations(
                batch,
                self.llm,
                seed=self.config.seed,
                min_turns=inst.min_turns,
                max_turns=inst.max_turns,
                repairs=inst.repairs,
                max_tokens=inst.max_tokens,
            )
            out += [{**m, "id": f"{m['id']}#llm", "image": m["id"]} for m in made]
            rejects += failed
        return out, rejects


def run_pipeline(
    config: RunConfig, out: str | Path, *, restart: bool = False, progress: bool = True, log=print
) -> dict:
    """Run (or resume) `config` into `out`; returns the manifest of the finished run."""
    folder = RunFolder(out)
    seeds, seed_stats = read_seeds(config.seeds.source, limit=config.seeds.limit)
    manifest = folder.open(config.to_dict(), config.sha256(), restart=restart)
    started = time.perf_counter()
    pipeline = Pipeline(config, folder.root / "cache.sqlite")
    try:
        return _run_shards(
            config, folder, manifest, pipeline, seeds, seed_stats, time.perf_counter() - started, progress, log
        )
    finally:
        if pipeline.llm is not None:
            pipeline.llm.close()


def _run_shards(config, folder, manifest, pipeline, seeds, seed_stats, setup, progress, log) -> dict:
    shards = [seeds[i : i + config.shard_size] for i in range(0, len(seeds), config.shard_size)]
    done = {s["index"] for s in manifest["shards"]}
    for index in sorted(done):
        pipeline.remember(folder.read_shard(index)[0]["caption"])
    if done:
        log(f"resuming: {len(done)} of {len(shards)} shards already written")
    rows_before = sum(s["rows"] for s in manifest["shards"])
    with tqdm(
        total=len(seeds),
        initial=sum(len(shards[i]) for i in done if i < len(shards)),
        desc="run",
        unit="seed",
        disable=not progress,
    ) as bar:
        for index, shard in enumerate(shards):
            if index in done:
                continue
            t0 = time.perf_counter()
            llm_before = pipeline.llm.usage.seconds if pipeline.llm else 0.0
            clock_before = Counter(pipeline.clock)
            try:
                metadata, text_emb, image_emb, instructions, stats = pipeline.shard(shard)
                rejects = stats.pop("rejects")
                t1 = time.perf_counter()
                entry = folder.write_shard(index, metadata, text_emb, image_emb, instructions)
            except (OSError, sqlite3.Error) as e:
                raise InputError(
                    f"shard {index} failed ({type(e).__name__}: {e}); earlier shards are intact, run again to resume"
                ) from None
            write_s = time.perf_counter() - t1
            seconds = {
                "llm": (pipeline.llm.usage.seconds if pipeline.llm else 0.0) - llm_before,
                "encoder": pipeline.clock["encoder"] - clock_before["encoder"],
                "projector": pipeline.clock["projector"] - clock_before["projector"],
                "write": write_s,
                "total": time.perf_counter() - t0,
            }
            entry.update(
                stats=stats,
                seconds={k: round(v, 4) for k, v in seconds.items()},
                rejects=rejects[:20],
                seeds=[shard[0]["id"], shard[-1]["id"]],
            )
            manifest["shards"].append(entry)
            folder.write_manifest(manifest)  # the shard counts as done from here on
            bar.update(len(shard))
            bar.set_postfix(rows=sum(s["rows"] for s in manifest["shards"]))
    manifest["complete"] = True
    manifest["seed_file"] = {"source": config.seeds.source, **seed_stats}
    manifest["setup_seconds"] = round(setup, 2)
    if pipeline.llm is not None:
        u = pipeline.llm.usage
        manifest["llm_usage"] = {
            "requests": u.requests,
            "cache_hits": u.cache_hits,
            "completion_tokens": u.completion_tokens,
            "seconds": round(u.seconds, 2),
        }
    folder.write_manifest(manifest)
    log(
        f"wrote {sum(s['rows'] for s in manifest['shards']) - rows_before} new rows; "
        f"{sum(s['rows'] for s in manifest['shards'])} in {len(manifest['shards'])} shards at {folder.root}"
    )
    return manifest
