"""A small VLM trained by the LLaVA recipe on this project's exports: does text-only data train a model that works on
real images?

The model: the image embedding (one vector, as a trainer of precomputed embeddings takes it) through an MLP connector
(LLaVA's `mlp2x_gelu`) into `image_tokens` soft tokens, followed by the conversation, into a causal transformer LM.
The LM is small and trained from scratch on the run's own text, with a word-level tokenizer built from it: that is
what fits 2 CPU cores (a training run in seconds to minutes). A pretrained LM (the bundled Gemma 3 270M through
transformers' GGUF loader) costs ~1.6 GFLOP per token forward and backward, tens of tokens per second here: hours
per run, so it is not the bench's model; the recipe is the same.

Stages (LLaVA): 1, the caption rows (`pretrain.json`: `<image>` + a brief-description prompt -> the caption); 2, the
conversations (`llava.json`) with the caption rows mixed in. Loss on answers only (the assistant's tokens and its
end token). With a from-scratch LM, stage 1 trains the LM with the connector (there is no pretrained LM to keep
frozen). Deterministic under a seed (same machine, same thread count). Checkpoints: `model.safetensors` +
`config.json` (format, version, the tokenizer's vocabulary, the weights' SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

FORMAT, VERSION = "unicorn-vlm", 1
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>", "<image>", "<human>", "<gpt>")
PAD, UNK, BOS, EOS, IMAGE, HUMAN, GPT = range(len(SPECIALS))
TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
IGNORE = -100
PRETRAIN_PROMPT = "Describe the image briefly."


class WordTokenizer:
    """Lower-cased words and single punctuation marks; the vocabulary is the training text's own (plus specials)."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def build(cls, texts, *, max_size: int = 8000) -> WordTokenizer:
        counts: dict[str, int] = {}
        for text in texts:
            for w in TOKEN.findall(text.lower()):
                counts[w] = counts.get(w, 0) + 1
        words = sorted(counts, key=lambda w: (-counts[w], w))[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *sorted(words)])

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, UNK) for w in TOKEN.findall(text.lower())]

    def decode(self, ids) -> str:
        words = [self.vocab[i] for i in ids if i >= len(SPECIALS)]
        return re.sub(r" ([^\w\s])", r"\1", " ".join(words))

    def __len__(self) -> int:
        return len(self.vocab)


@dataclass(frozen=True)
class VLMConfig:
    embed_dim: int  # the image embedding's width (the connector's input)
    vocab_size: int
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    image_tokens: int = 4
    max_len: int = 96


@dataclass(frozen=True)
class TrainConfig:
    """How `train_vlm` trains. Each field is checked on construction."""

    seed: int = 0
    stage1_steps: int = 300  # caption rows only
    stage2_steps: int = 600  # conversations, caption rows mixed in
    batch_size: int = 32
    lr: float = 2e-3
    d_model: int = 128
    layers: int = 2
    image_tokens: int = 4
    threads: int = 2  # torch CPU threads: part of what makes a run repeat exactly

    def __post_init__(self) -> None:
        for name in ("stage1_steps", "stage2_steps"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "d_model", "layers", "image_tokens", "threads"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr <= 1:
            raise InputError(f"lr must be in (0, 1], got {self.lr}")


def _model_class():
    import torch
    from torch import nn

    class TinyVLM(nn.Module):
        """connector (mlp2x_gelu) -> `image_tokens` soft tokens after <bos>; a pre-norm causal transformer LM."""

        def __init__(self, config: VLMConfig) -> None:
            super().__init__()
            c, d = config, config.d_model
            self.config = config
            self.connector = nn.Sequential(nn.Linear(c.embed_dim, d), nn.GELU(), nn.Linear(d, d * c.image_tokens))
            self.tokens = nn.Embedding(c.vocab_size, d)
            self.positions = nn.Embedding(c.max_len, d)
            layer = nn.TransformerEncoderLayer(d, c.heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, c.vocab_size, bias=False)
            self.head.weight = self.tokens.weight  # tied
            for table in (self.tokens, self.positions):  # GPT-2's scale: unit-variance rows make logits explode
                nn.init.normal_(table.weight, std=0.02)

        def forward(self, embeddings, ids):
            # embeddings (b, embed_dim); ids (b, t) with <bos> then image_tokens <image> slots then text
            b, t = ids.shape
            k = self.config.image_tokens
            image = self.connector(embeddings).view(b, k, -1)  # (b, k, d)
            x = self.tokens(ids)
            x = torch.cat([x[:, :1], image, x[:, 1 + k :]], dim=1) + self.positions(torch.arange(t))
            mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
            return self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))  # (b, t, vocab)

    return TinyVLM


def _turns_ids(tok: WordTokenizer, conversation: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation after the image: human turns masked, assistant turns and their <eos>
    learned."""
    ids, labels = [], []
    for turn in conversation:
        words = tok.encode(turn["value"].replace("<image>", " "))
        if turn["from"] == "human":
            ids += [HUMAN, *words, GPT]
            labels += [IGNORE] * (len(words) + 2)
        else:
            ids += [*words, EOS]
            labels += [*words, EOS]
    return ids, labels


class Examples:
    """Tokenised training rows: (embedding row, ids, labels), padded to one length on demand."""

    def __init__(self, tok: WordTokenizer, rows: list[tuple[int, list[dict]]], image_tokens: int, max_len: int):
        self.items = []
        prefix = [BOS] + [IMAGE] * image_tokens
        for emb_row, conversation in rows:
            ids, labels = _turns_ids(tok, conversation)
            ids, labels = (prefix + ids)[:max_len], ([IGNORE] * len(prefix) + labels)[:max_len]
            self.items.append((emb_row, ids, labels))

    def batch(self, picks):
        import torch

        width = max(len(self.items[i][1]) for i in picks)
        ids = torch.full((len(picks), width), PAD, dtype=torch.long)
        labels = torch.full((len(picks), width), IGNORE, dtype=torch.long)
        for r, i in enumerate(picks):
            _, x, y = self.items[i]
            ids[r, : len(x)] = torch.tensor(x)
            labels[r, : len(y)] = torch.tensor(y)
        return [self.items[i][0] for i in picks], ids, labels


@dataclass
class ExportData:
    embeddings: np.ndarray  # (n, dim) float32
    captions: list[tuple[int, list[dict]]] = field(default_factory=list)  # (embedding row, 2-turn conversation)
    conversations: list[tuple[int, list[dict]]] = field(default_factory=list)


def read_export(folder: str | os.PathLike) -> ExportData:
    """A `unicorn export --format llava` folder: its embeddings and its stage-1 and stage-2 rows, checked."""
    folder = Path(folder)
    if not (folder / "embeddings.npy").is_file():
        raise InputError(f"{folder} has no embeddings.npy: give a `unicorn export --format llava` folder")
    try:
        embeddings = np.load(folder / "embeddings.npy", allow_pickle=False).astype(np.float32)
        ids = json.loads((folder / "embedding_ids.json").read_text())
        pretrain = json.loads((folder / "pretrain.json").read_text()) if (folder / "pretrain.json").is_file() else []
        conversations = json.loads((folder / "llava.json").read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{folder} is not a readable `unicorn export --format llava` folder: {e}") from None
    if embeddings.ndim != 2 or len(embeddings) != len(ids):
        raise InputError(f"{folder}: embeddings.npy holds {embeddings.shape} for {len(ids)} ids")
    if not len(ids):
        raise InputError(f"{folder} holds no rows to train on (an empty run)")
    row = {r: k for k, r in enumerate(ids)}
    data = ExportData(embeddings)
    for source, out in ((pretrain, data.captions), (conversations, data.conversations)):
        for item in source:
            if item.get("image") not in row:
                raise InputError(f"{folder}: a row refers to unknown embedding {item.get('image')!r}")
            out.append((row[item["image"]], item["conversations"]))
    return data


def train_vlm(
    export: str | os.PathLike | ExportData,
    out: str | os.PathLike | None = None,
    config: TrainConfig = TrainConfig(),
    *,
    init: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[object, WordTokenizer, dict]:
    """Train (stage 1, then stage 2) on an export; returns (model, tokenizer, history with the loss per step).
    `init`: a checkpoint to start from (its connector must take this export's embedding width)."""
    import torch
    from tqdm.auto import tqdm

    data = export if isinstance(export, ExportData) else read_export(export)
    dim = data.embeddings.shape[1]
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if init is not None:
        model, tok = load_vlm(init)
        if model.config.embed_dim != dim:
            raise InputError(
                f"checkpoint {init} has a connector for {model.config.embed_dim}-d embeddings; the export's are {dim}-d"
            )
    else:
        texts = [t["value"] for _, conv in data.captions + data.conversations for t in conv] + [PRETRAIN_PROMPT]
        tok = WordTokenizer.build(texts)
        vlm_config = VLMConfig(dim, len(tok), d_model=config.d_model, layers=config.layers,
                               image_tokens=config.image_tokens)  # fmt: skip
        model = _model_class()(vlm_config)
    k, max_len = model.config.image_tokens, model.config.max_len
    stage1 = Examples(tok, data.captions, k, max_len)
    stage2 = Examples(tok, data.conversations + data.captions, k, max_len)
    stages = [("stage 1", stage1, config.stage1_steps), ("stage 2", stage2, config.stage2_steps)]
    embeddings = torch.from_numpy(data.embeddings)
    rng = np.random.default_rng(config.seed)
    history: dict = {"loss": [], "tokens_per_second": 0.0}
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    total = sum(steps for _, ex, steps in stages if ex.items)
    step, tokens, started = 0, 0, time.perf_counter()
    model.train()
    with tqdm(total=total, desc="vlm", unit="step", disable=not progress) as bar:
        for name, examples, steps in stages:
            if not examples.items:
                continue
            for _ in range(steps):
                lr = config.lr * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))  # cosine decay
                for group in optimiser.param_groups:
                    group["lr"] = lr
                picks = rng.integers(0, len(examples.items), config.batch_size)
                rows, ids, labels = examples.batch(picks)
                logits = model(embeddings[rows], ids)
                loss = torch.nn.functional.cross_entropy(
                    logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                step += 1
                tokens += int((ids != PAD).sum())
                value = float(loss.detach())
                history["loss"].append(round(value, 5))
                rate = tokens / max(time.perf_counter() - started, 1e-9)
                bar.update(1)
                bar.set_postfix(stage=name, loss=f"{value:.3f}", tok_s=f"{rate:.0f}", refresh=False)
    history["tokens_per_second"] = round(tokens / max(time.perf_counter() - started, 1e-9), 1)
    history["seconds"] = round(time.perf_counter() - started, 2)
    model.eval()
    if out is not None:
        save_vlm(model, tok, out, train=asdict(config), history=history)
    return model, tok, history


def save_vlm(model, tok: WordTokenizer, out: str | os.PathLike, **extra) -> None:
    from safetensors.torch import save_file

    from modality_transfer.io import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "head.weight"}  # tied to tokens
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    config = {"format": FORMAT, "version": VERSION, "model": asdict(model.config), "vocab": tok.vocab,
              "weights_sha256": digest, **extra}  # fmt: skip
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=1))


def load_vlm(folder: str | os.PathLike):
    """(model, tokenizer) from a checkpoint folder, checked: format, version, the weights' checksum, exact keys."""
    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{folder} is not a VLM checkpoint: {e}") from None
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise InputError(f"{folder} is not a {FORMAT} v{VERSION} checkpoint")
    weights = folder / "model.safetensors"
    if not weights.is_file() or hashlib.sha256(weights.read_bytes()).hexdigest() != config.get("weights_sha256"):
        raise InputError(f"{weights} is missing or does not match its checksum")
    model = _model_class()(VLMConfig(**config["model"]))
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "head.weight"]
    if missing or unexpected:
        raise InputError(f"{weights}: missing keys {missing}, unexpected keys {unexpected}")
    model.eval()
    torch.set_grad_enabled(True)
    return model, WordTokenizer(config["vocab"])


def generate(model, tok: WordTokenizer, embeddings: np.ndarray, prompts, *, max_tokens: int = 40) -> list[str]:
    """Greedy replies, one per image embedding (n, dim), to `prompts` (one string for all, or one per row). Rows are
    batched by prompt length, so every row of a batch sits at the same positions."""
    import torch

    n = len(embeddings)
    prompts = [prompts] * n if isinstance(prompts, str) else list(prompts)
    if len(prompts) != n:
        raise InputError(f"{len(prompts)} prompts for {n} embeddings")
    k = model.config.image_tokens
    encoded = [[BOS] + [IMAGE] * k + [HUMAN, *tok.encode(p), GPT] for p in prompts]
    replies: list[str] = [""] * n
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        groups.setdefault(len(ids), []).append(i)
    with torch.no_grad():
        for rows in groups.values():
            ids = torch.tensor([encoded[i] for i in rows], dtype=torch.long)
            emb = torch.from_numpy(np.ascontiguousarray(embeddings[rows], np.float32))
            out: list[list[int]] = [[] for _ in rows]
            done = torch.zeros(len(rows), dtype=torch.bool)
            for _ in range(max_tokens):
                if ids.shape[1] >= model.config.max_len or done.all():
                    break
                nxt = model(emb, ids)[:, -1].argmax(-1)
                for r in range(len(rows)):
                    if not done[r]:
                        if int(nxt[r]) == EOS:
                            done[r] = True
                        else:
                            out[r].append(int(nxt[r]))
                ids = torch.cat([ids, nxt[:, None]], dim=1)
            for r, i in enumerate(rows):
                replies[i] = tok.decode(out[r])
    return replies
