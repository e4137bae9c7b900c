"""Can an image tower see shape at all? Train candidate towers directly on shape (or another attribute's) labels
of lone objects.

    python bench/shape_probe.py [--attribute shape] [--train 4000] [--test 1000] [--epochs 6]

Each tower (world-CLIP's previous 3-layer ViT with 8x8 patches, the ModifiedResNet it now uses, and a plain
4-layer CNN for reference) gets a linear head and the same seeded data, then is tested on held-out scenes;
accuracy per object size and training speed are printed side by side. This is what chose world-CLIP's tower:
a tower that cannot learn shape from labels will not learn it from captions either.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from unicorn.world import clip, sample_scenes
from unicorn.world.scene import VOCABULARY, WorldConfig
from unicorn.world.train import image_tensor

TOWERS = {
    "vit (3 layers, width 128, 8x8 patches; before)": {
        "image_size": 64,
        "layers": 3,
        "width": 128,
        "patch_size": 8,
        "head_width": 32,
    },
    "ModifiedResNet (1-1-1-1, width 16) at 64": {
        "image_size": 64,
        "layers": [1, 1, 1, 1],
        "width": 16,
        "head_width": 32,
    },
    "ModifiedResNet (1-1-1-1, width 16) at 96; now": {
        "image_size": 96,
        "layers": [1, 1, 1, 1],
        "width": 16,
        "head_width": 32,
    },
}


def cnn() -> nn.Module:
    layers, width = [], 3
    for out in (32, 64, 128, 128):
        layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        width = out
    return nn.Sequential(
        *layers[:-1], nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(width, clip.MODEL_CFG["embed_dim"])
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--attribute", default="shape", choices=sorted(VOCABULARY))
    args = parser.parse_args()

    lone = WorldConfig(min_objects=1, max_objects=1)
    train = sample_scenes(args.train, seed=0, config=lone)
    test = sample_scenes(args.test, seed=0, config=lone, start=1_000_000)
    pre = clip.PREPROCESS_CFG
    inputs = {  # the world's 64x64 images, enlarged for a tower that takes 96 as the eval transform enlarges them
        size: [image_tensor(s, size, pre["mean"], pre["std"]) for s in (train, test)] for size in (64, 96)
    }
    values = VOCABULARY[args.attribute]
    y, yt = (
        torch.tensor([values.index(getattr(s.objects[0], args.attribute)) for s in part]) for part in (train, test)
    )
    sizes = [s.objects[0].size for s in test]

    towers = {}
    for name, vision in TOWERS.items():
        cfg = copy.deepcopy(clip.MODEL_CFG)
        cfg["vision_cfg"] = vision
        towers[name] = (clip.build(cfg)[0].visual, vision["image_size"])
    towers["plain CNN (reference) at 64"] = (cnn(), 64)

    print(f"{args.attribute} accuracy on {args.test} held-out lone objects (chance {1 / len(values):.2f})")
    for name, (tower, size) in towers.items():
        x, xt = inputs[size]
        torch.manual_seed(0)
        net = nn.Sequential(tower, nn.Linear(clip.MODEL_CFG["embed_dim"], len(values)))
        opt = torch.optim.AdamW(net.parameters(), 2e-3)
        g = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(args.epochs):
            for idx in torch.randperm(len(x), generator=g).split(128):
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        seconds = time.perf_counter() - start
        with torch.inference_mode():
            hit = (net.eval()(xt).argmax(1) == yt).float()
        by_size = {
            z: hit[[i for i, s in enumerate(sizes) if s == z]].mean().item() for z in ("small", "medium", "large")
        }
        params = sum(p.numel() for p in tower.parameters())
        print(
            f"{name:48s} {hit.mean().item():.3f}  "
            + " ".join(f"{z} {v:.3f}" for z, v in by_size.items())
            + f"  {params / 1e6:.2f}M params, {len(x) * args.epochs / seconds:.0f} img/s training"
        )


if __name__ == "__main__":
    main()
