import numpy as np
import pytest

from modality_transfer.checks import l2_normalize
from modality_transfer.metrics import (
    centroid_gap,
    frechet_distance,
    gap_report,
    mmd_rbf,
    recall_at_k,
    semantic_rho,
    two_sample_accuracy,
)


def test_frechet_matches_scipy_reference():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((200, 16)), rng.standard_normal((150, 16)) * 1.5 + 0.3
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * scipy_linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)


def test_identical_sets_score_perfectly():
    rng = np.random.default_rng(0)
    x = l2_normalize(rng.standard_normal((120, 32)))
    assert recall_at_k(x, x, np.arange(120))[1] == 1.0
    assert centroid_gap(x, x) == 0.0
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert abs(mmd_rbf(x, x)) < 0.02
    assert semantic_rho(x, x) == pytest.approx(1.0)


def test_two_sample_accuracy_separates_shifted_sets():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 8))
    assert two_sample_accuracy(a, rng.standard_normal((200, 8))) < 0.65
    assert two_sample_accuracy(a, rng.standard_normal((200, 8)) + 2.0) > 0.95


def test_recall_known_answer():
    bank = np.eye(4, dtype=np.float32)
    queries = np.array([[1, 0.1, 0, 0], [0.9, 1, 0, 0], [0, 0, 0.2, 1]], dtype=np.float32)
    r = recall_at_k(queries, bank, np.array([0, 0, 2]), ks=(1, 2))
    assert r == {1: pytest.approx(1 / 3), 2: pytest.approx(1.0)}


def test_gap_report_keys(pairs):
    text, image = pairs
    report = gap_report(text, text[:50], image, rows=np.arange(50))
    assert set(report) == {
        "cos_paired",
        "r1",
        "r5",
        "r10",
        "r1_i2t",
        "centroid_gap",
        "frechet",
        "mmd",
        "two_sample_acc",
        "semantic_rho",
    }
    assert report["semantic_rho"] == pytest.approx(1.0)
