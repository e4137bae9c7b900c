import json

import numpy as np
import pytest

from modality_transfer import InputError, create_projector, list_projectors, load_projector
from modality_transfer.metrics import centroid_gap


@pytest.mark.parametrize("method", list_projectors())
def test_save_load_roundtrip(method, pairs, tmp_path):
    text, image = pairs
    projector = create_projector(method).fit(text[:200], image[:200])
    out = projector.transform(text[200:])
    assert out.shape == (100, text.shape[1]) and out.dtype == np.float32
    if projector.renormalise:  # unicorn_released keeps the released arithmetic's shorter vectors
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    projector.save(tmp_path / method)
    loaded = load_projector(tmp_path / method)
    np.testing.assert_allclose(loaded.transform(text[200:]), out, atol=1e-6)


@pytest.mark.parametrize("method", list_projectors())
def test_chunked_equals_whole(method, pairs):
    text, image = pairs
    projector = create_projector(method).fit(text, image)
    np.testing.assert_allclose(projector.transform(text, chunk_size=7), projector.transform(text), atol=1e-6)


def test_deterministic_noise(pairs):
    text, _ = pairs
    a = create_projector("noise", sigma=0.1, seed=3).fit(text).transform(text)
    b = create_projector("noise", sigma=0.1, seed=3).fit(text).transform(text)
    c = create_projector("noise", sigma=0.1, seed=4).fit(text).transform(text)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_mean_shift_formula(pairs):
    text, image = pairs
    out = create_projector("mean_shift").fit(text, image).transform(text)
    expected = text - text.mean(0) + image.mean(0)
    np.testing.assert_allclose(out, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_shift_methods_close_the_gap(pairs):
    text, image = pairs
    raw = centroid_gap(text, image)
    for method in ("mean_shift", "realign", "linear", "procrustes", "learned", "contrastive"):
        synth = create_projector(method).fit(text, image).transform(text)
        assert centroid_gap(synth, image) < 0.25 * raw, method


def test_contrastive_is_deterministic_under_its_seed(pairs):
    text, image = pairs
    fit = dict(steps=40, batch_size=64)  # batches smaller than the data: the seed picks them
    a = create_projector("contrastive", seed=1, **fit).fit(text, image).transform(text)
    b = create_projector("contrastive", seed=1, **fit).fit(text, image).transform(text)
    c = create_projector("contrastive", seed=2, **fit).fit(text, image).transform(text)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_contrastive_without_its_residual_is_mean_shift(pairs):
    """Weight decay pulls the residual to zero: a huge decay leaves exactly Unicorn's mean shift."""
    text, image = pairs
    out = create_projector("contrastive", decay=1e6, steps=20).fit(text, image).transform(text)
    shift = create_projector("mean_shift").fit(text, image).transform(text)
    np.testing.assert_allclose(out, shift, atol=2e-3)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"contrast": -1}, "must be >= 0"),
        ({"steps": 0}, "steps must be >= 1"),
        ({"batch_size": 1}, "batch_size >= 2"),
        ({"lr": 0}, "must be > 0"),
        ({"temperature": 1}, "bad parameters"),
    ],
)
def test_contrastive_refuses_bad_parameters(params, match):
    with pytest.raises(InputError, match=match):
        create_projector("contrastive", **params)


def test_procrustes_is_orthogonal(pairs):
    text, image = pairs
    rot = create_projector("procrustes").fit(text, image).state["rotation"]
    np.testing.assert_allclose(rot @ rot.T, np.eye(len(rot)), atol=1e-4)


def test_paired_methods_need_images(pairs):
    text, _ = pairs
    for method in ("mean_shift", "realign", "linear", "procrustes", "learned", "contrastive"):
        with pytest.raises(InputError, match="image"):
            create_projector(method).fit(text)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 8)), "empty"),
        (np.ones(8), "2-D"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "zero vector in row 1"),
    ],
)
def test_bad_arrays(bad, match):
    with pytest.raises(InputError, match=match):
        create_projector("identity").fit(bad)


def test_row_count_and_dim_mismatch(pairs):
    text, image = pairs
    with pytest.raises(InputError, match="row counts differ"):
        create_projector("linear").fit(text, image[:-1])
    projector = create_projector("linear").fit(text, image)
    with pytest.raises(InputError, match="dimension"):
        projector.transform(text[:, :10])


def test_unknown_method_and_params():
    with pytest.raises(InputError, match="choose one of"):
        create_projector("nope")
    with pytest.raises(InputError, match="bad parameters"):
        create_projector("identity", sigma=1)
    with pytest.raises(InputError, match=r"must be in \[0, 10\]"):
        create_projector("noise", sigma=-1)


def test_corrupt_folders(pairs, tmp_path):
    text, image = pairs
    create_projector("linear").fit(text, image).save(tmp_path / "p")
    weights = tmp_path / "p" / "weights.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="altered"):
        load_projector(tmp_path / "p")
    weights.unlink()
    with pytest.raises(InputError, match="no weights"):
        load_projector(tmp_path / "p")
    with pytest.raises(InputError, match="config.json is missing"):
        load_projector(tmp_path / "nothing")
    config = tmp_path / "p" / "config.json"
    cfg = json.loads(config.read_text())
    config.write_text(json.dumps({**cfg, "method": "evil.module"}))
    with pytest.raises(InputError, match="unknown projector method"):
        load_projector(tmp_path / "p")
    config.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_projector(tmp_path / "p")


def test_swapped_weights_named_keys(pairs, tmp_path):
    """Weights of one method under another's config: strict load names the missing and unexpected keys."""
    text, image = pairs
    create_projector("linear").fit(text, image).save(tmp_path / "lin")
    create_projector("procrustes").fit(text, image).save(tmp_path / "pro")
    cfg = json.loads((tmp_path / "pro" / "config.json").read_text())
    lin_cfg = json.loads((tmp_path / "lin" / "config.json").read_text())
    (tmp_path / "pro" / "weights.safetensors").write_bytes((tmp_path / "lin" / "weights.safetensors").read_bytes())
    cfg["weights_sha256"] = lin_cfg["weights_sha256"]
    (tmp_path / "pro" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"missing keys \['rotation'\], unexpected keys \['weight'\]"):
        load_projector(tmp_path / "pro")


def test_transform_file_refuses_a_truncated_file(pairs, tmp_path):
    from modality_transfer.io import transform_file

    text, image = pairs
    np.save(tmp_path / "t.npy", text)
    blob = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(blob[: len(blob) - 100])
    projector = create_projector("mean_shift").fit(text, image)
    assert transform_file(projector, tmp_path / "t.npy", tmp_path / "s.npy", chunk_size=50) == len(text)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), projector.transform(text), atol=1e-6)
    with pytest.raises(InputError, match="truncated at row 250"):
        transform_file(projector, tmp_path / "cut.npy", tmp_path / "bad.npy", chunk_size=50)
    assert not list(tmp_path.glob("*bad.npy*"))


def test_unicorn_released_is_the_published_arithmetic():
    """Unicorn's data/embed_mean.py: normalised text embeddings, minus their float32 mean; no image mean, no
    renormalisation. The oracle is that arithmetic written out here, not the projector's code."""
    rng = np.random.default_rng(3)
    text = rng.standard_normal((50, 16)).astype(np.float32) * rng.uniform(0.5, 2, (50, 1)).astype(np.float32)
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    mean = np.zeros(16, np.float32)
    for row in unit:  # the released loop: text_mean += embed, then / total
        mean += row
    mean /= len(unit)
    expected = unit - mean
    projector = create_projector("unicorn_released").fit(text)
    out = projector.transform(text)
    assert np.allclose(out, expected, atol=1e-6)
    assert not np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-3)  # not renormalised, as released
    assert not np.allclose(out, create_projector("center").fit(text).transform(text))  # center renormalises
