"""`EmbeddingConversationDataset` and `collate`: what a VLM trainer imports to train on a `unicorn export llava`
folder: the synthetic image embedding as a tensor, and the conversation tokenised with labels masked on human
turns (so the loss falls only on the answers)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import InputError

IGNORE = -100
ROLES = {"human": "Human: ", "gpt": "Assistant: "}


class EmbeddingConversationDataset(Dataset):
    """Items `{"embedding": (dim,) float32, "input_ids": (t,), "labels": (t,)}` from an exported folder."""

    def __init__(self, folder: str | os.PathLike, tokenizer, *, max_length: int = 512) -> None:
        folder = Path(folder)
        try:
            self.conversations = json.loads((folder / "llava.json").read_text())
            ids = json.loads((folder / "embedding_ids.json").read_text())
            self.embeddings = np.load(folder / "embeddings.npy", mmap_mode="r")
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{folder} is not a `unicorn export llava` folder: {e}") from None
        self.row = {rid: k for k, rid in enumerate(ids)}
        missing = [c["image"] for c in self.conversations if c["image"] not in self.row]
        if missing:
            raise InputError(f"{len(missing)} conversations refer to unknown embeddings, e.g. {missing[0]!r}")
        self.tokenizer, self.max_length = tokenizer, max_length

    def __len__(self) -> int:
        return len(self.conversations)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        conv = self.conversations[i]
        input_ids, labels = [], []
        for turn in conv["conversations"]:
            text = ROLES[turn["from"]] + turn["value"].replace("<image>", "").strip() + "\n"
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            input_ids += ids
            labels += ids if turn["from"] == "gpt" else [IGNORE] * len(ids)
        embedding = torch.from_numpy(np.asarray(self.embeddings[self.row[conv["image"]]], dtype=np.float32))
        return {
            "embedding": embedding,
            "input_ids": torch.tensor(input_ids[: self.max_length]),
            "labels": torch.tensor(labels[: self.max_length]),
        }


def collate(items: list[dict], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a batch: `input_ids` with `pad_id`, `labels` with -100, plus `attention_mask` and stacked embeddings."""
    width = max(len(x["input_ids"]) for x in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for k, x in enumerate(items):
        n = len(x["input_ids"])
        ids[k, :n], labels[k, :n], mask[k, :n] = x["input_ids"], x["labels"], 1
    return {
        "embedding": torch.stack([x["embedding"] for x in items]),
        "input_ids": ids,
        "labels": labels,
        "attention_mask": mask,
    }
