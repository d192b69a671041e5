"""Feature summaries and the distances a new device computes from them (client/summary.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fedotl.client.summary import RFF_BANDWIDTHS, a_distance, mmd, rank_sources, rff_map, summarise


def test_summary_holds_the_moments_of_its_embeddings():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(60, 3))
    y = np.r_[np.zeros(20, int), np.full(40, 2)]  # class 1 never seen
    s = summarise(E, y, 3)
    assert int(s["n"]) == 60 and s["class_count"].tolist() == [20, 0, 40]
    assert np.allclose(s["mean"], E.mean(0)) and np.allclose(s["cov"], np.cov(E, rowvar=False))
    assert np.allclose(s["class_mean"][0], E[:20].mean(0)) and np.allclose(s["class_mean"][1], 0)
    centred = np.vstack([E[:20] - E[:20].mean(0), E[20:] - E[20:].mean(0)])
    assert np.allclose(s["within_cov"], centred.T @ centred / (60 - 2))
    assert np.allclose(s["rff"], rff_map(E).mean(0))


def test_random_features_approximate_the_sum_of_gaussian_kernels():
    rng = np.random.default_rng(1)
    d = 8
    x, y = rng.normal(size=d), rng.normal(size=d)
    approx = float(rff_map(x[None])[0] @ rff_map(y[None])[0])
    exact = sum(np.exp(-np.sum((x - y) ** 2) / (2 * (f * np.sqrt(d)) ** 2)) for f in RFF_BANDWIDTHS)
    assert abs(approx - exact) < 0.15 * len(RFF_BANDWIDTHS)
    assert float(rff_map(x[None])[0] @ rff_map(x[None])[0]) == pytest.approx(len(RFF_BANDWIDTHS), abs=0.3)


def test_mmd_ranks_hand_made_sources_by_how_far_they_are():
    rng = np.random.default_rng(2)
    d = 16
    summaries = {f"shift {m}": summarise(rng.normal(m, 1.0, (300, d)), np.zeros(300, int), 1) for m in (0.0, 1.0, 3.0)}
    summaries["wide"] = summarise(rng.normal(0.0, 3.0, (300, d)), np.zeros(300, int), 1)
    target = rng.normal(1.0, 1.0, (150, d))
    dist, order = rank_sources(target, summaries, "mmd")
    assert order[0] == "shift 1.0" and order[-1] == "shift 3.0"
    assert dist["shift 0.0"] < dist["shift 3.0"] and all(v >= 0 for v in dist.values())
    _, top2 = rank_sources(target, summaries, "mmd", top_k=2)
    assert top2 == order[:2]
    assert mmd(target, summaries["shift 1.0"]) < 0.1


def test_a_distance_is_small_for_the_same_gaussian_and_large_for_a_far_one():
    rng = np.random.default_rng(3)
    s = summarise(rng.normal(0, 1, (400, 5)), np.zeros(400, int), 1)
    near = a_distance(rng.normal(0, 1, (200, 5)), s)
    far = a_distance(rng.normal(4, 1, (200, 5)), s)
    assert 0.0 <= near < 0.6 and far > 1.8


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        summarise(np.zeros((1, 3)), np.zeros(1, int), 2)
    s = summarise(np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10, int), 1)
    with pytest.raises(ValueError, match="unknown distance"):
        rank_sources(np.zeros((5, 3)), {"a": s}, "cosine")
    with pytest.raises(ValueError, match="top-k"):
        rank_sources(np.zeros((5, 3)), {"a": s}, "mmd", top_k=-1)
