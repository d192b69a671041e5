"""Shared fixtures: an isolated cache, the real-data location, synthetic sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FEDOTL_SHARED_DATA", ROOT.parent / "shared" / "data"))
DSADS_ZIP = SHARED_DATA / "dsads" / "daily_and_sports_activities.zip"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # One cache per test session: tests never read a user's cache, and the
    # real DSADS is parsed once per session, not once per test.
    monkeypatch.setenv("FEDOTL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def dsads_zip() -> Path:
    if not DSADS_ZIP.exists():
        pytest.skip(f"real DSADS not found at {DSADS_ZIP} (set FEDOTL_SHARED_DATA to its data folder)")
    return DSADS_ZIP


@pytest.fixture(scope="session")
def synth_dsads(tmp_path_factory) -> Path:
    """Synthetic DSADS, 4 subjects × 19 activities × 6 segments, as extracted folders."""
    from fedotl.simulations.readers import dsads

    out = tmp_path_factory.mktemp("synth_dsads")
    dsads.write_synthetic(out, n_subjects=4, seed=1, n_segments=6)
    return out


@pytest.fixture
def task_identity():
    """Flower Messages need a task identity; the Simulation Engine sets one per run."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0
    yield
    TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = saved
