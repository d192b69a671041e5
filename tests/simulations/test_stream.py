"""``fedotl stream``: domains, sources and the JSON contract, on synthetic DSADS."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedotl.simulations.cli import main
from fedotl.simulations.readers import dsads
from fedotl.simulations.stream import ODDM_SLICE, build_task, learner_factories

N_WINDOWS = 19 * 6  # synthetic DSADS: 19 activities x 6 segments per subject
N_STREAM = N_WINDOWS - round(ODDM_SLICE * N_WINDOWS)  # ODDM's unlabelled slice is held out


@pytest.fixture(scope="module")
def ds(synth_dsads):
    return dsads.read(synth_dsads)


def test_subject_task_uses_only_source_statistics(ds):
    task = build_task(ds, "p2")
    assert [s.name for s in task.sources] == ["p1", "p3", "p4"]
    assert task.target.name == "p2" and task.target.X.shape == (N_STREAM, 270)
    pooled = task.pooled.X
    np.testing.assert_allclose(pooled.mean(axis=0), 0.0, atol=1e-4)
    # the target is standardised with the sources' statistics, not its own
    assert np.abs(task.target.X.mean(axis=0)).max() > 0.1


def test_position_task_views_one_unit(ds):
    task = build_task(ds, "p1", target_position="LA", source_position="RA")
    assert task.target.name == "p1@LA" and task.target.X.shape[1] == 9 * 6
    assert [s.name for s in task.sources] == ["p1@RA", "p2@RA", "p3@RA", "p4@RA"]
    with pytest.raises(ValueError, match="give both"):
        build_task(ds, "p1", target_position="LA")
    with pytest.raises(ValueError, match="cannot also be a source"):
        build_task(ds, "p1", source_subjects=["p1", "p2"])


def test_factories_give_fresh_learners(ds):
    task = build_task(ds, "p3", source_subjects=["p1", "p2"])
    f = learner_factories(task, ["homotlms", "pa"])
    assert f["homotlms"]() is not f["homotlms"]()
    a, b = f["pa"](), f["pa"]()
    y = task.target.y
    k = int(np.flatnonzero(y != y[0])[0])
    a.learn_array(task.target.X[0], y[0])
    a.learn_array(task.target.X[k], y[k])
    assert np.abs(a.weights_).sum() > 0
    assert np.abs(np.asarray(b.weights_)).sum() == 0  # b untouched by a's update
    with pytest.raises(ValueError, match="unknown learner"):
        learner_factories(task, ["nope"])


def test_stream_json_contract(synth_dsads, capsys):
    rc = main(
        ["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p4",
         "--learners", "pa,source,homotl1,homotlms", "--permutations", "3", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["target"] == "p4" and out["n"] == N_STREAM
    assert set(out["learners"]) == {"pa", "source", "homotl1", "homotlms"}
    for r in out["learners"].values():
        assert 0.0 <= r["mistake_rate_mean"] <= 1.0 and r["mistake_rate_std"] >= 0.0
        assert len(r["curve"]) == 50 and r["curve"][-1] == pytest.approx(r["mistake_rate_mean"])
    # the source classifier is fixed, so its mistakes do not depend on the order
    assert out["learners"]["source"]["mistake_rate_std"] == pytest.approx(0.0, abs=1e-12)


def test_time_order_adds_persistence(ds, synth_dsads, capsys):
    rc = main(["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p1",
               "--learners", "pa", "--time-order", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(out["learners"]) == {"pa", "persistence"}
    # the stream (time order, slice held out): persistence errs once per bout of one label
    y = build_task(ds, "p1").target.y
    bouts = 1 + int((y[1:] != y[:-1]).sum())
    assert out["learners"]["persistence"]["mistake_rate_mean"] == pytest.approx(bouts / len(y))
    assert bouts == 19  # every activity keeps at least one window in the stream


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--target-subject", "p9"], "unknown target subject"),
        (["--target-subject", "p1", "--learners", "pa,magic"], "unknown learner"),
        (["--target-subject", "p1", "--target-position", "XX", "--source-position", "RA"], "no position 'XX'"),
    ],
)
def test_stream_bad_arguments(synth_dsads, capsys, extra, needle):
    rc = main(["stream", "--dataset", "dsads", str(synth_dsads), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err


def test_cross_dataset_sources_share_activities_and_channels(ds, tmp_path):
    from fedotl.simulations.readers import pamap2

    pamap2.write_synthetic(tmp_path, n_subjects=2, seed=4)
    src = pamap2.read(tmp_path)
    task = build_task(ds, "p1", target_position="RA", source_position="hand", source_ds=src)
    assert [s.name for s in task.sources] == ["pamap2:101@hand", "pamap2:102@hand"]
    shared = set(task.target.y.tolist())
    assert shared == set(np.concatenate([s.y for s in task.sources]).tolist())
    assert task.target.X.shape[1] == task.sources[0].X.shape[1] == 54
    with pytest.raises(ValueError, match="45 channels, source view 27"):
        build_task(ds, "p1", source_ds=src)  # all DSADS channels vs all PAMAP2 channels


def test_online_target_standardization_wraps_every_learner(ds):
    from fedotl.online import MulticlassPA, TargetStandardized

    task = build_task(ds, "p2", target_position="LA", source_position="RA")
    names = ["pa", "source", "paio", "homotl1", "homotlms", "oddm"]
    plain = learner_factories(task, names)
    wrapped = learner_factories(task, names, target_standardize="online", prior_weight=5.0)
    assert not any(isinstance(f(), TargetStandardized) for f in plain.values())  # default unchanged
    for f in wrapped.values():
        model = f()
        assert isinstance(model, TargetStandardized) and model.prior_weight == 5.0
    X, y = task.target.X, task.target.y
    expected = TargetStandardized(MulticlassPA(), prior_weight=5.0).prequential(X, y)
    np.testing.assert_array_equal(wrapped["pa"]().prequential(X, y), expected)
    with pytest.raises(ValueError, match="target_standardize must be one of source, online"):
        learner_factories(task, ["pa"], target_standardize="target")
    with pytest.raises(ValueError, match="prior_weight must be a positive finite number"):
        learner_factories(task, ["pa"], target_standardize="online", prior_weight=0.0)


def test_stream_json_reports_target_standardization(synth_dsads, capsys):
    base = ["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p3",
            "--source-position", "RA", "--target-position", "LA", "--learners", "pa,paio",
            "--permutations", "2", "--json"]
    assert main(base) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["target_standardize"] == "source" and default["prior_weight"] is None
    assert main([*base, "--target-standardize", "online", "--prior-weight", "7.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target_standardize"] == "online" and out["prior_weight"] == 7.5
    assert set(out["learners"]) == {"pa", "paio"} and out["n"] == default["n"]
    for r in out["learners"].values():
        assert 0.0 <= r["mistake_rate_mean"] <= 1.0
    assert main([*base, "--target-standardize", "online"]) == 0
    assert json.loads(capsys.readouterr().out)["prior_weight"] == 20.0


def test_stream_table_mentions_online_standardization(synth_dsads, capsys):
    rc = main(["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p1",
               "--learners", "pa", "--permutations", "2", "--target-standardize", "online"])
    assert rc == 0 and "target standardised online (prior weight 20)" in capsys.readouterr().out


def test_stream_prior_weight_needs_online(synth_dsads, capsys):
    rc = main(["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p1",
               "--learners", "pa", "--prior-weight", "5"])
    err = capsys.readouterr().err
    assert rc == 2 and "--prior-weight applies to --target-standardize online only" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--target-standardize", "target"], "invalid choice: 'target'"),
        (["--target-standardize", "online", "--prior-weight", "0"], "expected a positive finite number, got '0'"),
        (["--target-standardize", "online", "--prior-weight", "inf"], "expected a positive finite number, got 'inf'"),
        (["--target-standardize", "online", "--prior-weight", "many"], "expected a number, got 'many'"),
    ],
)
def test_stream_bad_standardization_values(synth_dsads, capsys, extra, needle):
    with pytest.raises(SystemExit) as exc:
        main(["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p1", *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and "Traceback" not in err


# ---------------------------------------------------------------------- ODDM's unlabelled slice
def test_oddm_slice_is_held_out_of_the_stream(ds):
    full = build_task(ds, "p1", oddm_slice=0.0)
    assert full.unlabeled is None and len(full.target.y) == N_WINDOWS
    task = build_task(ds, "p1")
    sl, st = task.unlabeled, task.target
    assert len(sl.y) == N_WINDOWS - N_STREAM and len(st.y) == N_STREAM
    rows = {r.tobytes() for r in full.target.X}
    # slice and stream split the target's windows: the stream holds none of the slice's
    stream_rows = {r.tobytes() for r in st.X}
    slice_rows = {r.tobytes() for r in sl.X}
    assert not stream_rows & slice_rows and stream_rows | slice_rows == rows
    # the stream keeps time order (it is the full stream with the slice's windows removed)
    keep = np.array([r.tobytes() not in slice_rows for r in full.target.X])
    np.testing.assert_array_equal(st.X, full.target.X[keep])
    # random by default: the slice spans the activities, not only the first ones
    assert len(np.unique(sl.y)) > 10
    start = build_task(ds, "p1", oddm_slice_from="start")
    np.testing.assert_array_equal(start.unlabeled.X, full.target.X[: len(sl.y)])
    np.testing.assert_array_equal(start.target.X, full.target.X[len(sl.y):])
    with pytest.raises(ValueError, match="fraction in"):
        build_task(ds, "p1", oddm_slice=1.0)
    with pytest.raises(ValueError, match="taken from one of random, start"):
        build_task(ds, "p1", oddm_slice_from="end")


def test_oddm_jda_sees_only_the_slice(ds):
    task = build_task(ds, "p2", target_position="LA", source_position="RA")
    model = learner_factories(task, ["oddm"])["oddm"]()
    # the running target mean starts at the slice's mean, counting its windows
    np.testing.assert_allclose(model._mu_t[0], task.unlabeled.X.astype(float).mean(axis=0), rtol=1e-5)
    assert model._nt[0] == len(task.unlabeled.y)
    # the old code fitted JDA on the stream's own first 50 windows: their mean differs
    assert not np.allclose(model._mu_t[0], task.target.X[:50].mean(axis=0))
    with pytest.raises(ValueError, match="held out of the stream"):
        learner_factories(build_task(ds, "p2", oddm_slice=0.0), ["oddm"])


def test_every_learner_streams_the_same_windows(synth_dsads, capsys):
    rc = main(["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p2",
               "--learners", "pa,oddm", "--permutations", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["n"] == N_STREAM
    assert main(["stream", "--dataset", "dsads", str(synth_dsads), "--target-subject", "p2",
                 "--learners", "pa", "--permutations", "2", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    # pa's column does not depend on whether oddm ran beside it
    assert alone["n"] == N_STREAM
    assert alone["learners"]["pa"]["mistake_rate_mean"] == out["learners"]["pa"]["mistake_rate_mean"]
