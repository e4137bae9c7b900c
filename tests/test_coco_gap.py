"""Reproduce the modality gap on real CLIP ViT-B/16 embeddings of 500 COCO pairs (5 folds)."""

import pytest

from modality_transfer.crossval import gap_bench


@pytest.fixture(scope="module")
def report(coco500):
    text, image = coco500
    return gap_bench(text, image, folds=5, seed=0, progress=False)["methods"]


def test_baselines_reproduce(report):
    assert report["identity"]["cos_paired"] == pytest.approx(0.31, abs=0.02)
    assert report["identity"]["r1"] == pytest.approx(0.51, abs=0.02)
    assert report["identity"]["centroid_gap"] == pytest.approx(0.85, abs=0.02)
    assert report["mean_shift"]["cos_paired"] == pytest.approx(0.68, abs=0.02)
    assert report["mean_shift"]["r1"] == pytest.approx(0.32, abs=0.02)


def test_the_trade_off(report):
    """Ridge wins cosine and loses retrieval; unpaired shifts close the centroid gap."""
    assert report["linear"]["cos_paired"] > 0.78 and report["linear"]["r1"] < 0.1
    for method in ("mean_shift", "realign"):
        assert report[method]["centroid_gap"] < 0.1
        assert report[method]["two_sample_acc"] < 0.6


def test_learned_frontier(report):
    """What `learned` reaches on held-out folds (the issue's moonshot target is not met; see the README)."""
    learned, shift = report["learned"], report["mean_shift"]
    assert learned["cos_paired"] > shift["cos_paired"]
    assert learned["r5"] > shift["r5"]
    assert learned["frechet"] < shift["frechet"]
    assert learned["centroid_gap"] <= 0.11


def test_contrastive_beats_mean_shift_on_cosine_and_retrieval(report):
    """The shipped default: held out, it beats Unicorn's mean shift on both paired cosine and R@1 (issue 11)."""
    ours, shift = report["contrastive"], report["mean_shift"]
    assert ours["cos_paired"] > shift["cos_paired"] + 0.02
    assert ours["r1"] > shift["r1"] + 0.01
    assert ours["r5"] > shift["r5"]
