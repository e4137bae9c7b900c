"""`unicorn world ...`: train world-CLIP, run the end-to-end transfer bench, and sample world seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modality_transfer import list_projectors
from modality_transfer.io import write_json, write_jsonl

from ..errors import InputError


def add_commands(commands) -> None:
    world = commands.add_parser("world", help="the procedural world: train-clip, bench, sample")
    sub = world.add_subparsers(dest="world_command", required=True)

    train = sub.add_parser("train-clip", help="train world-CLIP's image tower (text tower locked)")
    train.add_argument("--out", default="checkpoints/world-clip", help="checkpoint folder to write")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--scenes", type=int, default=None, help="training scenes (default 12000)")
    train.add_argument("--epochs", type=int, default=None, help="passes over the scenes (default 16)")
    train.add_argument("--threads", type=int, default=2, help="torch CPU threads (fixed, for reproducibility)")
    train.set_defaults(run=_train)

    bench = sub.add_parser("bench", help="train downstream models on real, raw-text and projected embeddings")
    bench.add_argument("--encoder", default="world", help="encoder spec with an image tower (default: world)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--train-scenes", type=int, default=2000)
    bench.add_argument("--test-scenes", type=int, default=1000)
    bench.add_argument("--fit-scenes", type=int, default=2000)
    bench.add_argument("--epochs", type=int, default=40)
    bench.add_argument(
        "--downstream-seeds", type=int, default=3, help="train each downstream model this many times (spread)"
    )
    bench.add_argument(
        "--train-noise", type=float, default=0.0, help="CapDec-style noise std on the downstream model's inputs"
    )
    bench.add_argument("--projectors", help=f"comma-separated subset of: {', '.join(list_projectors())}")
    bench.add_argument("--json", help="write the report as JSON here")
    bench.add_argument("--threads", type=int, default=2)
    bench.set_defaults(run=_bench)

    pairs = sub.add_parser("pairs", help="embed rendered scenes and their captions: paired .npy for `unicorn gap`")
    pairs.add_argument("--n", type=int, default=4000, help="number of scenes")
    pairs.add_argument("--encoder", default="world")
    pairs.add_argument("--seed", type=int, default=0)
    pairs.add_argument("--out", required=True, help="folder for text.npy and image.npy")
    pairs.set_defaults(run=_pairs)

    sample = sub.add_parser("sample", help="write world scenes and captions as JSONL seeds")
    sample.add_argument("--n", type=int, required=True, help="number of scenes")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True, help="JSONL file to write")
    sample.add_argument("--images", help="also render each scene as PNG into this folder")
    sample.set_defaults(run=_sample)


def _threads(n: int) -> None:
    import torch

    if n < 1:
        raise InputError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def _train(args) -> int:
    from ..world import clip
    from ..world.train import TrainConfig, train_clip

    _threads(args.threads)
    overrides = {k: v for k, v in (("scenes", args.scenes), ("epochs", args.epochs)) if v is not None}
    config = TrainConfig(seed=args.seed, **overrides)
    model, card = train_clip(config)
    card["command"] = "unicorn world train-clip " + " ".join(
        sys.argv[3:] if sys.argv[1:3] == ["world", "train-clip"] else []
    )
    folder = clip.save(model, args.out, card)
    print(json.dumps(card["eval"], indent=2))
    print(f"wrote {folder}")
    return 0


def _bench(args) -> int:
    from ..encoders import create_encoder
    from ..world.downstream import BenchConfig, default_projectors, format_table, world_bench

    _threads(args.threads)
    projectors = tuple(p.strip() for p in args.projectors.split(",")) if args.projectors else default_projectors()
    config = BenchConfig(
        fit_scenes=args.fit_scenes,
        train_scenes=args.train_scenes,
        test_scenes=args.test_scenes,
        epochs=args.epochs,
        seed=args.seed,
        downstream_seeds=args.downstream_seeds,
        train_noise=args.train_noise,
        projectors=projectors,
    )
    encoder = create_encoder(args.encoder)
    if not encoder.has_image:
        raise InputError(f"encoder '{args.encoder}' has no image tower; the bench needs real image embeddings")
    report = world_bench(encoder, config, log=lambda m: print(m, file=sys.stderr))
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0


def _sample(args) -> int:
    from ..world import captions, render, sample_scenes

    if args.n < 1:
        raise InputError(f"--n must be >= 1, got {args.n}")
    scenes = sample_scenes(args.n, seed=args.seed)
    caps = captions(scenes, seed=args.seed, per_scene=2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(
        out,
        (
            {"id": f"world-{args.seed}-{k:06d}", "caption": short, "dense_caption": dense, "scene": scene.to_dict()}
            for k, (scene, (short, dense)) in enumerate(zip(scenes, caps, strict=True))
        ),
    )
    if args.images:
        folder = Path(args.images)
        folder.mkdir(parents=True, exist_ok=True)
        for k, scene in enumerate(scenes):
            render(scene, 128).save(folder / f"world-{args.seed}-{k:06d}.png")
    print(f"wrote {len(scenes)} scenes to {out}")
    return 0


def _pairs(args) -> int:
    import numpy as np

    from ..encoders import create_encoder
    from ..world.downstream import FIT_START, embed_scenes
    from ..world.scene import sample_scenes

    if args.n < 1:
        raise InputError(f"--n must be >= 1, got {args.n}")
    encoder = create_encoder(args.encoder)
    image, text = embed_scenes(encoder, sample_scenes(args.n, seed=args.seed, start=FIT_START), args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "text.npy", text)
    np.save(out / "image.npy", image)
    print(f"wrote {args.n} pairs of {encoder.dim}-d embeddings to {out}/text.npy and image.npy")
    return 0
