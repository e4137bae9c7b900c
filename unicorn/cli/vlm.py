"""`unicorn vlm train`: a small VLM trained by the LLaVA recipe on an export (unicorn.vlm)."""

from __future__ import annotations

import json


def add_commands(commands) -> None:
    vlm = commands.add_parser("vlm", help="train a small VLM on an export (LLaVA recipe, CPU-sized)")
    sub = vlm.add_subparsers(dest="vlm_command", required=True)
    train = sub.add_parser("train", help="stage 1 on caption rows, stage 2 on conversations; safetensors checkpoint")
    train.add_argument("export", help="a `unicorn export --format llava` folder")
    train.add_argument("--out", required=True, help="checkpoint folder to write")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--stage1-steps", type=int, default=300)
    train.add_argument("--stage2-steps", type=int, default=600)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--d-model", type=int, default=128)
    train.add_argument("--layers", type=int, default=2)
    train.add_argument("--init", help="a checkpoint to continue from (its connector must fit the export's width)")
    train.set_defaults(run=_train)


def _train(args) -> int:
    from ..vlm import TrainConfig, train_vlm

    config = TrainConfig(seed=args.seed, stage1_steps=args.stage1_steps, stage2_steps=args.stage2_steps,
                         batch_size=args.batch_size, lr=args.lr, d_model=args.d_model, layers=args.layers)  # fmt: skip
    _, tok, history = train_vlm(args.export, args.out, config, init=args.init)
    loss = history["loss"]
    print(json.dumps({"out": args.out, "steps": len(loss), "first_loss": loss[0] if loss else None,
                      "last_loss": loss[-1] if loss else None, "vocab": len(tok),
                      "tokens_per_second": history["tokens_per_second"], "seconds": history["seconds"]}))  # fmt: skip
    return 0
