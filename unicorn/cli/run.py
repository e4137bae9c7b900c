"""`unicorn run`, `unicorn validate`, `unicorn index`, `unicorn export`: the pipeline and its outputs."""

from __future__ import annotations

import json
import sys

from ..errors import InputError


def add_commands(commands) -> None:
    run = commands.add_parser("run", help="run (or resume) a pipeline config into a sharded dataset")
    run.add_argument("config", nargs="?", help="YAML run config (default: configs/default.yaml)")
    run.add_argument("--out", default="runs/default", help="output folder")
    run.add_argument("--restart", action="store_true", help="discard the run in --out and start over")
    run.add_argument("--no-report", action="store_true")
    run.add_argument(
        "--engine", default="local", help="local (this process) or ray (Ray Data; pip install -e '.[ray]')"
    )
    run.add_argument("--address", help="with --engine ray: join the Ray cluster at this address (or set RAY_ADDRESS)")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override one config value (repeatable; read as YAML), e.g. --set captions.k=2")  # fmt: skip
    run.set_defaults(run=_run)

    val = commands.add_parser("validate", help="check a run folder: shards, checksums, alignment, norms, format")
    val.add_argument("dir")
    val.set_defaults(run=_validate)

    idx = commands.add_parser("index", help="build a faiss index over a run's synthetic image embeddings")
    idx.add_argument("dir")
    idx.add_argument("--out", help="index folder (default: DIR/index)")
    idx.set_defaults(run=_index)

    exp = commands.add_parser(
        "export",
        help="export a run for a VLM trainer: unicorn (Unicorn's released trainer, unchanged), llava (LLaVA-shaped "
        "JSON whose image is an embedding id), hf (a typed datasets dataset)",
    )
    exp.add_argument("dir")
    exp.add_argument("--format", choices=("unicorn", "llava", "hf"), required=True)
    exp.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                     help="with unicorn or llava: the embeddings' type (a float32 model needs float32)")  # fmt: skip
    exp.add_argument("--embeddings", default="synthetic", choices=("synthetic", "released"),
                     help="with unicorn: the run's projected embeddings, or stage 3 as Unicorn released it (text "
                     "embeddings minus their mean)")  # fmt: skip
    exp.add_argument("--out", required=True)
    exp.add_argument("--push-to-hub", metavar="REPO", help="with --format hf: also push to this hub repo")
    exp.add_argument(
        "--drop-caption-only", action="store_true", help="with --format hf: leave out rows without a conversation"
    )
    exp.set_defaults(run=_export)


def _run(args) -> int:
    from ..pipeline.config import load_config
    from ..pipeline.report import write_report
    from ..pipeline.run import run_pipeline

    config = load_config(args.config, parse_sets(args.set))
    manifest = run_pipeline(
        config,
        args.out,
        engine=args.engine,
        address=args.address,
        restart=args.restart,
        log=lambda m: print(m, file=sys.stderr),
    )
    if not args.no_report:
        from ..encoders import create_encoder

        encoder = create_encoder(config.embed.encoder)
        path = write_report(args.out, encoder=encoder if encoder.has_image else None)
        print(f"report: {path}")
    from ..seeds import describe_seed_stats

    totals = manifest["totals"]
    print(f"seeds: {describe_seed_stats(manifest['seed_file'])}")
    print(f"{totals['rows']} rows in {totals['shards']} shards at {args.out}")
    return 0


def parse_sets(items: list[str]) -> dict:
    """`--set a.b=v` items as nested overrides for `load_config` (values read as YAML: 2, 0.1, true, null)."""
    import yaml

    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. captions.k=2")
        *sections, last = key.strip().split(".")
        where = overrides
        for part in sections:
            where = where.setdefault(part, {})
            if not isinstance(where, dict):
                raise InputError(f"--set {item!r}: {part} was already given a value")
        try:
            where[last] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InputError(f"--set {item!r}: the value is not valid YAML") from None
    return overrides


def _validate(args) -> int:
    from ..pipeline.validate import validate_run

    result = validate_run(args.dir)
    print(json.dumps(result, indent=1))
    if result["problems"]:
        raise InputError(f"{args.dir} is invalid: {result['problem_count']} problems, first: {result['problems'][0]}")
    return 0


def _index(args) -> int:
    from ..exports import build_index

    print(json.dumps(build_index(args.dir, args.out)))
    return 0


def _export(args) -> int:
    from ..exports import export_hf, export_llava, export_unicorn

    if args.format == "llava":
        print(json.dumps(export_llava(args.dir, args.out, dtype=args.dtype)))
        return 0
    if args.format == "unicorn":
        print(json.dumps(export_unicorn(args.dir, args.out, dtype=args.dtype, embeddings=args.embeddings)))
        return 0
    result = export_hf(args.dir, args.out, caption_only=not args.drop_caption_only)
    if args.push_to_hub:
        import datasets

        datasets.load_from_disk(args.out).push_to_hub(args.push_to_hub)
    print(json.dumps(result))
    return 0
