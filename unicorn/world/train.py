"""Contrastive training of world-CLIP's image tower on rendered scenes and their captions, on CPU.

The text transformer is locked, so its pooled features are computed once up front; each step then
costs one image-tower pass, which is what makes a useful CLIP trainable on 2 cores in minutes.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from modality_transfer.metrics import centroid_gap, cos_paired, recall_at_k

from ..errors import InputError
from . import clip
from .caption import captions
from .render import render
from .scene import VOCABULARY, SceneGraph, WorldConfig, relations_of, sample_scenes

RENDER_SIZE = WorldConfig().image_size  # the world renders 64x64 images; the tower may take them enlarged
EVAL_START = 10_000_000  # held-out scenes come from far along the seed's stream, never from training


@dataclass(frozen=True)
class TrainConfig:
    scenes: int = 12_000
    captions_per_scene: int = 3
    epochs: int = 16
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    # inverse temperature (held unless learn_logit_scale): a low temperature keeps CLIP's modality gap open; at 1/100
    # the convolutional tower closed it to 0.29, at 1/200 it stays open
    logit_scale: float = 200.0
    learn_logit_scale: bool = False
    hard_negatives: int = 1  # attribute-swapped captions per caption, as extra negatives for each image (NegCLIP)
    eval_scenes: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("scenes", "captions_per_scene", "epochs", "batch_size", "eval_scenes"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hard_negatives < 0:
            raise InputError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        if self.batch_size > self.scenes:
            raise InputError(f"batch_size ({self.batch_size}) cannot exceed the number of scenes ({self.scenes})")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr}")


def hard_negative(scene: SceneGraph, rng: np.random.Generator) -> SceneGraph:
    """The scene with one thing changed: one object's shape, colour, size or texture, or (with several objects)
    one object fewer. Its caption, written with the positive's own random stream, differs from the positive's
    in that one place, so an image can only tell them apart by seeing that attribute (NegCLIP, Yuksekgonul et
    al. 2023). A contrastive batch alone rarely holds two scenes that differ only in shape, so without these
    the image tower learns colour and position and little shape."""
    objects = list(scene.objects)
    kinds = list(VOCABULARY) + (["count"] if len(objects) > 1 else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    k = int(rng.integers(len(objects)))
    if kind == "count":
        del objects[k]
    else:
        values = [v for v in VOCABULARY[kind] if v != getattr(objects[k], kind)]
        objects[k] = replace(objects[k], **{kind: values[int(rng.integers(len(values)))]})
    return SceneGraph(tuple(objects), relations_of(tuple(objects)))


def image_tensor(scenes: list[SceneGraph], size: int, mean, std, render_size: int = RENDER_SIZE) -> torch.Tensor:
    """Scenes rendered at `render_size` (the world's images), resized to the tower's `size` as the eval transform
    resizes them (bicubic), as one normalised (n, 3, size, size) float tensor."""
    images = [render(s, render_size) for s in scenes]
    if size != render_size:
        images = [im.resize((size, size), Image.Resampling.BICUBIC) for im in images]
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2).float().div_(255)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@torch.inference_mode()
def pooled_text(model, tokenizer, texts: list[str], batch_size: int = 128, progress: bool = True) -> torch.Tensor:
    """Mean-pooled outputs of the locked text transformer, before the trained projection, in input order.

    Texts run sorted by length and each batch is cut to its longest row, so little time goes on padding.
    """
    text = model.text
    ids = tokenizer(texts)
    mask = (ids != text.config.pad_token_id).long()
    order = torch.argsort(mask.sum(1), stable=True)
    out = torch.empty(len(texts), text.transformer.config.hidden_size)
    for start in tqdm(range(0, len(texts), batch_size), desc="embed captions", unit="batch", disable=not progress):
        rows = order[start : start + batch_size]
        width = int(mask[rows].sum(1).max())
        m = mask[rows, :width]
        out[rows] = text.pooler(text.transformer(input_ids=ids[rows, :width], attention_mask=m), m)
    return out


def evaluate(model, images: torch.Tensor, pooled: torch.Tensor) -> dict[str, float]:
    """Held-out retrieval and gap figures for row-aligned images and caption features."""
    with torch.inference_mode():
        img = F.normalize(model.encode_image(images), dim=-1).numpy()
        txt = F.normalize(model.text.proj(pooled), dim=-1).numpy()
    idx = np.arange(len(img))
    return {
        "pairs": len(img),
        "r1_image_to_text": round(recall_at_k(img, txt, idx, ks=(1,))[1], 4),
        "r1_text_to_image": round(recall_at_k(txt, img, idx, ks=(1,))[1], 4),
        "r5_text_to_image": round(recall_at_k(txt, img, idx, ks=(5,))[5], 4),
        "chance_r1": round(1 / len(img), 4),
        "cos_paired": round(cos_paired(txt, img), 4),
        "centroid_gap": round(centroid_gap(txt, img), 4),
    }


def train_clip(config: TrainConfig, *, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Train world-CLIP under `config`; returns the model and its card (training setup and held-out figures)."""
    torch.manual_seed(config.seed)
    started = time.time()
    model, preprocess, tokenizer = clip.build()
    pre = clip.PREPROCESS_CFG
    size = clip.MODEL_CFG["vision_cfg"]["image_size"]

    train_scenes = sample_scenes(config.scenes, seed=config.seed)
    eval_scenes = sample_scenes(config.eval_scenes, seed=config.seed, start=EVAL_START)
    images = image_tensor(train_scenes, size, pre["mean"], pre["std"])
    eval_images = image_tensor(eval_scenes, size, pre["mean"], pre["std"])
    texts = [c for per in captions(train_scenes, seed=config.seed, per_scene=config.captions_per_scene) for c in per]
    eval_texts = [per[0] for per in captions(eval_scenes, seed=config.seed + 1, per_scene=1, style="dense")]
    pooled = pooled_text(model, tokenizer, texts, progress=progress).view(config.scenes, config.captions_per_scene, -1)
    negatives = None
    if config.hard_negatives:
        # negative j of scene k is drawn from its own stream, so it is the same whatever the batch or epoch
        neg_texts = []
        for j in range(config.hard_negatives):
            changed = [
                hard_negative(s, np.random.default_rng([config.seed, k, 3, j])) for k, s in enumerate(train_scenes)
            ]
            # captions() seeds scene k's stream by its index, as for the positives: only the changed words differ
            neg_texts += [
                c for per in captions(changed, seed=config.seed, per_scene=config.captions_per_scene) for c in per
            ]
        negatives = pooled_text(model, tokenizer, neg_texts, progress=progress).view(
            config.hard_negatives, config.scenes, config.captions_per_scene, -1
        )
        # a short caption may not name what was changed (texture, size): such a "negative" is the positive
        # itself and would teach the tower to push its own caption away, so it is masked out of the loss
        same = torch.tensor([a == b for a, b in zip(neg_texts, texts * config.hard_negatives, strict=True)])
        same = same.view(config.hard_negatives, config.scenes, config.captions_per_scene)
    eval_pooled = pooled_text(model, tokenizer, eval_texts, progress=False)

    with torch.no_grad():
        model.logit_scale.fill_(math.log(config.logit_scale))
    model.logit_scale.requires_grad_(config.learn_logit_scale)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = config.scenes // config.batch_size
    total = steps_per_epoch * config.epochs

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        return (
            config.lr
            * 0.5
            * (1 + math.cos(math.pi * (step - config.warmup_steps) / max(1, total - config.warmup_steps)))
        )

    g = torch.Generator().manual_seed(config.seed)
    model.train()
    step, loss_value = 0, float("nan")
    with tqdm(total=total * config.batch_size, desc="train world-CLIP", unit="img", disable=not progress) as bar:
        for _ in range(config.epochs):
            order = torch.randperm(config.scenes, generator=g)
            pick = torch.randint(config.captions_per_scene, (config.scenes,), generator=g)
            for b in range(steps_per_epoch):
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                for group in optimiser.param_groups:
                    group["lr"] = lr_at(step)
                img = F.normalize(model.encode_image(images[idx]), dim=-1)
                txt = F.normalize(model.text.proj(pooled[idx, pick[idx]]), dim=-1)
                scale = model.logit_scale.exp()
                logits = scale * img @ txt.T
                labels = torch.arange(len(idx))
                image_to_text = logits
                if negatives is not None:  # each image also ranks every hard negative of the batch (NegCLIP)
                    neg = negatives[:, idx, pick[idx]].reshape(-1, negatives.shape[-1])
                    neg_logits = scale * img @ F.normalize(model.text.proj(neg), dim=-1).T
                    neg_logits = neg_logits.masked_fill(same[:, idx, pick[idx]].reshape(1, -1), float("-inf"))
                    image_to_text = torch.cat([logits, neg_logits], 1)
                loss = (F.cross_entropy(image_to_text, labels) + F.cross_entropy(logits.T, labels)) / 2
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, math.log(max(100.0, config.logit_scale)))  # CLIP's cap, or ours
                step += 1
                loss_value = loss.item()
                bar.update(len(idx))
                bar.set_postfix(loss=f"{loss_value:.3f}", step=f"{step}/{total}")
    model.eval()
    figures = evaluate(model, eval_images, eval_pooled)
    card = {
        "training": {
            **asdict(config),
            "steps": total,
            "final_loss": round(loss_value, 4),
            "final_logit_scale": round(float(model.logit_scale.exp()), 2),
            "minutes": round((time.time() - started) / 60, 2),
            "torch_threads": torch.get_num_threads(),
            "data": "scenes sampled by unicorn.world (seeded), rendered at "
            f"{RENDER_SIZE}x{RENDER_SIZE} and enlarged to {size}x{size}, "
            f"{config.captions_per_scene} captions each (short and dense styles)",
        },
        "eval": {"data": f"{config.eval_scenes} held-out scenes, one dense caption each", **figures},
    }
    return model, card
