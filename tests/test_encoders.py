"""Encoders through their real code paths, offline: a tiny open_clip model from a config with random
weights, a tiny Hugging Face CLIP saved and reloaded from disk, and the real all-MiniLM-L6-v2."""

import json

import numpy as np
import pytest
from PIL import Image

from unicorn.encoders import create_encoder
from unicorn.errors import InputError

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(5)]


@pytest.fixture(scope="module")
def minilm():
    return create_encoder("st:default", device="cpu")


def check_rows(x, n, dim):
    assert x.shape == (n, dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_openclip_from_config(tmp_path, images):
    cfg = tmp_path / "TinyTestCLIP.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    enc = create_encoder(f"openclip:{cfg}/random", device="cpu")
    assert enc.dim == 32
    texts = ["a red cube", "two blue balls", "a red cube"]
    t = enc.encode_text(texts, batch_size=2)
    check_rows(t, 3, 32)
    np.testing.assert_allclose(t[0], t[2], atol=1e-5)  # same text, same row, across batches
    check_rows(enc.encode_image(images, batch_size=2), 5, 32)


def test_hf_clip_from_local_dir(tmp_path, images):
    transformers = pytest.importorskip("transformers")
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast

    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 1000,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 16,
        },
        projection_dim=24,
    )
    CLIPModel(config).save_pretrained(tmp_path)
    # A word-level tokenizer built here: no hub access needed.
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<unk>", "<|startoftext|>", "<|endoftext|>"] + [w + "</w>" for w in ("a", "red", "cube", "two", "balls")]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.BPE(vocab, [], unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = CLIPTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32), tokenizer=fast
    ).save_pretrained(tmp_path)
    enc = create_encoder(f"hf:{tmp_path}", device="cpu")
    assert enc.dim == 24
    check_rows(enc.encode_text(["a red cube", "two balls"]), 2, 24)
    check_rows(enc.encode_image(images), 5, 24)
    assert transformers


def test_real_minilm(minilm):
    x = minilm.encode_text(
        ["A dog runs on the beach.", "A puppy running along the shore.", "A plate of pasta with tomato sauce."]
    )
    check_rows(x, 3, 384)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.3  # real semantics: paraphrase beats an unrelated sentence


def test_minilm_has_no_image_tower(minilm, images):
    with pytest.raises(InputError, match="no image tower"):
        minilm.encode_image(images)


def test_bad_specs_and_inputs(tmp_path, minilm):
    with pytest.raises(InputError, match="unknown encoder schema 'clip'"):
        create_encoder("clip:ViT-B-32")
    with pytest.raises(InputError, match="names no model"):
        create_encoder("st:")
    with pytest.raises(InputError, match="unknown open_clip architecture"):
        create_encoder("openclip:NoSuchArch/random")
    with pytest.raises(InputError, match=r"could not load st:.*local or reachable"):
        create_encoder(f"st:{tmp_path / 'missing-model'}")
    with pytest.raises(InputError, match="checkpoint .* not found"):
        create_encoder(f"openclip:ViT-B-32@{tmp_path / 'nope.safetensors'}")
    with pytest.raises(InputError, match="single string"):
        minilm.encode_text("one string")
    with pytest.raises(InputError, match="row 1 is int"):
        minilm.encode_text(["ok", 3])
