"""`unicorn gap ...`: fit, apply, evaluate and benchmark modality-gap projectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modality_transfer import create_projector, list_projectors, load_projector
from modality_transfer.checks import check_embeddings, check_paired
from modality_transfer.crossval import format_table, gap_bench
from modality_transfer.errors import InputError
from modality_transfer.io import load_npy, transform_file, write_json
from modality_transfer.metrics import gap_report


def add_commands(commands) -> None:
    gap = commands.add_parser("gap", help="modality-gap projectors: bench, fit, apply, eval")
    sub = gap.add_subparsers(dest="gap_command", required=True)

    bench = sub.add_parser("bench", help="cross-validate every projector on paired embeddings")
    bench.add_argument("--text", help="text embeddings .npy (n, dim); omit both for the built-in example")
    bench.add_argument("--image", help="image embeddings .npy (n, dim), row-aligned with --text")
    bench.add_argument("--folds", type=int, default=5)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--methods", help=f"comma-separated subset of: {', '.join(list_projectors())}")
    bench.add_argument("--json", help="write the report as JSON here")
    bench.add_argument("--plot", help="write a PCA picture of the gap (PNG) here")
    bench.set_defaults(run=_bench)

    fit = sub.add_parser("fit", help="fit one projector and save it to a folder")
    fit.add_argument("--method", required=True, choices=list_projectors())
    fit.add_argument("--text", help="text embeddings .npy (n, dim)")
    fit.add_argument("--image", help="image embeddings .npy, row-aligned with --text")
    fit.add_argument("--pairs", help='JSONL of {"image": PATH, "caption": TEXT}: embedded with --encoder, then fitted')
    fit.add_argument("--encoder", help="with --pairs: the CLIP to fit for, e.g. openclip:ViT-B-32/laion2b_s34b_b79k")
    fit.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter (repeatable)")
    fit.add_argument("--out", required=True, help="projector folder to write")
    fit.set_defaults(run=_fit)

    apply = sub.add_parser("apply", help="map text embeddings to synthetic image embeddings")
    apply.add_argument("--projector", required=True)
    apply.add_argument("--text", required=True)
    apply.add_argument("--out", required=True, help="output .npy")
    apply.add_argument("--chunk-size", type=int, default=65536)
    apply.set_defaults(run=_apply)

    ev = sub.add_parser("eval", help="measure a fitted projector on paired embeddings")
    ev.add_argument("--projector", required=True)
    ev.add_argument("--text", required=True)
    ev.add_argument("--image", required=True)
    ev.add_argument("--json")
    ev.set_defaults(run=_eval)


def _load_pair(args) -> tuple[np.ndarray, np.ndarray]:
    return check_paired(load_npy(args.text, "text embeddings"), load_npy(args.image, "image embeddings"))


def _bench(args) -> int:
    if (args.text is None) != (args.image is None):
        raise InputError("give both --text and --image, or neither for the built-in example")
    if args.text is None:
        from modality_transfer.datasets import synthetic_pairs

        print("Using the built-in example: 500 seeded synthetic pairs with a CLIP-like gap.")
        text, image = synthetic_pairs(seed=args.seed)
    else:
        text, image = _load_pair(args)
    methods = None
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = sorted(set(methods) - set(list_projectors()))
        if unknown:
            raise InputError(f"unknown methods {unknown}; choose from {', '.join(list_projectors())}")
    report = gap_bench(text, image, methods=methods, folds=args.folds, seed=args.seed)
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from modality_transfer.plot import plot_gap

        after = max(report["methods"], key=lambda m: report["methods"][m]["cos_paired"] + report["methods"][m]["r1"])
        panels = {"identity": text}
        if after != "identity":
            panels[after] = create_projector(after).fit(text, image).transform(text)
        plot_gap(text, image, panels, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param must look like KEY=VALUE, got '{item}'")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _fit(args) -> int:
    projector = create_projector(args.method, **_parse_params(args.param))
    if args.pairs:
        if args.text or args.image:
            raise InputError("give --pairs (with --encoder) or --text/--image, not both")
        if not args.encoder:
            raise InputError("--pairs needs --encoder (the CLIP whose gap to fit, e.g. openclip:ARCH/PRETRAINED)")
        from unicorn.encoders.pairs import embed_pairs

        text, image = embed_pairs(args.encoder, args.pairs)
        print(f"embedded {len(text)} pairs with {args.encoder}")
    else:
        if not args.text:
            raise InputError("give --text (and --image for paired methods), or --pairs with --encoder")
        text = load_npy(args.text, "text embeddings")
        image = load_npy(args.image, "image embeddings") if args.image else None
    projector.fit(text, image)
    projector.save(args.out)
    print(f"fitted '{args.method}' on {len(text)} rows of dimension {projector.dim}; saved to {args.out}")
    return 0


def _apply(args) -> int:
    projector = load_projector(args.projector)
    if args.chunk_size < 1:
        raise InputError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if Path(args.out).is_dir():
        raise InputError(f"--out {args.out} is a folder; give a .npy file path")
    rows = transform_file(projector, args.text, args.out, chunk_size=args.chunk_size)
    print(f"wrote {rows} synthetic image embeddings to {args.out}")
    return 0


def _eval(args) -> int:
    projector = load_projector(args.projector)
    text, image = _load_pair(args)
    check_embeddings(text, "text embeddings", dim=projector.dim)
    report = gap_report(text, projector.transform(text), image)
    for key, value in report.items():
        print(f"{key:>15}: {value:.4f}")
    if args.json:
        write_json(args.json, {"projector": str(args.projector), "n": len(text), "metrics": report})
    return 0
