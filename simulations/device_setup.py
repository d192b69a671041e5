"""What a streaming device runs, from command-line choices: its learner, scaler and label policy.

A device learns from scratch (``pa``: PA-I, its features standardised with running statistics
of its own windows) or starts from source classifiers trained offline on other subjects, another
body position or another dataset, as ``fedotl stream`` builds them (:func:`source_learners`).
With sources, the device's labels are the source dataset's activity *names*, its features are
standardised with the sources' statistics (``--standardize source``, the default) or re-
standardised online with its own windows (``--standardize online``).

ODDM is not offered: its JDA projection needs an unlabelled slice of the target stream before
the first prediction, which a live device does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Hashable, Sequence

import numpy as np

from fedotl.client.device import FeatureScaler
from fedotl.client.features import ONLINE_STATS
from fedotl.client.labels import LabelPolicy
from fedotl.simulations.dataset import HARDataset
from fedotl.simulations.stream import LEARNERS, source_learners, source_set

if TYPE_CHECKING:
    from fedotl.client.model_card import Federation

DEVICE_LEARNERS = tuple(n for n in LEARNERS if n != "oddm")
LABEL_MODES = ("all", "delayed", "budget")
DEFAULT_HORIZON = 3600  # windows: an hour at a 1 s stride, what HomOTL-II / Hedge are tuned for


@dataclass
class DeviceSetup:
    """A device's learner factory, scaler parameters, channels and label vocabulary."""

    learner: str
    make_learner: Any
    channels: list[str]
    mean: np.ndarray
    std: np.ndarray
    online: bool
    prior_weight: float
    sources: list[str] = field(default_factory=list)
    store_codes: dict[Hashable, int] = field(default_factory=dict)
    encode: Any = None  # raw windows → learner inputs, in place of the hand features (a federation's device)

    def scaler(self, n_devices: int = 1) -> FeatureScaler:
        return FeatureScaler(n_devices, self.mean, self.std, self.online, self.prior_weight)


def label_policy(mode: str, delay_s: float | None, budget: float | None, query: str, timeout_s: float, seed: int) -> LabelPolicy:
    """``--labels all|delayed|budget`` and their options as one policy (checks their combination)."""
    if mode not in LABEL_MODES:
        raise ValueError(f"--labels must be one of {', '.join(LABEL_MODES)}, got {mode!r}")
    if delay_s is not None and mode != "delayed":
        raise ValueError("--delay applies to --labels delayed")
    if budget is not None and mode != "budget":
        raise ValueError("--budget applies to --labels budget")
    if mode == "delayed" and delay_s is None:
        raise ValueError("--labels delayed needs --delay SECONDS")
    if mode == "budget" and budget is None:
        raise ValueError("--labels budget needs --budget FRACTION")
    return LabelPolicy(delay_s=delay_s or 0.0, budget=budget if budget is not None else 1.0,
                       query=query, timeout_s=max(timeout_s, (delay_s or 0.0) + 1.0), seed=seed)


def scratch_setup(channels: Sequence[str], prior_weight: float = 1.0) -> DeviceSetup:
    """PA-I from scratch over the device's own channels."""
    d = len(channels) * len(ONLINE_STATS)
    return DeviceSetup("pa", lambda: source_learners([], ["pa"], DEFAULT_HORIZON)["pa"](), list(channels),
                       np.zeros(d), np.ones(d), True, prior_weight)


def sources_setup(
    learner: str,
    source_view: HARDataset,
    source_subjects: Sequence[str],
    window_s: float,
    stride_s: float | None,
    standardize: str = "source",
    prior_weight: float = 20.0,
    horizon: int = DEFAULT_HORIZON,
    seed: int = 0,
) -> DeviceSetup:
    """``learner`` over source classifiers trained on ``source_subjects`` of ``source_view``."""
    if learner not in DEVICE_LEARNERS:
        raise ValueError(f"unknown device learner {learner!r}; choose from {', '.join(DEVICE_LEARNERS)}")
    if standardize not in ("source", "online"):
        raise ValueError(f"--standardize must be source or online, got {standardize!r}")
    if not source_subjects:
        raise ValueError("no source subjects")
    view = source_view.select_subjects(source_subjects)
    sources = source_set(view, source_subjects, window_s, stride_s)
    names = np.array([source_view.activities.get(c, str(c)) for c in range(max(source_view.activities) + 1)], dtype=object)
    domains = [replace(d, y=names[d.y]) for d in sources.domains]
    make = source_learners(domains, [learner], horizon=horizon, seed=seed)[learner]
    codes = {name: code for code, name in source_view.activities.items()}
    return DeviceSetup(learner, make, view.channel_names, sources.mean, sources.std, standardize == "online",
                       prior_weight, [d.name for d in domains], codes)


def match_channels(have: Sequence[str], need: Sequence[str], where: str) -> list[int]:
    """Column of each needed channel in ``have``: by name when all are there, else by position.

    >>> match_channels(["b", "a"], ["a", "b"], "x.csv"), match_channels(["u", "v"], ["a", "b"], "x.csv")
    ([1, 0], [0, 1])
    """
    if all(n in have for n in need):
        return [list(have).index(n) for n in need]
    if len(have) == len(need):
        return list(range(len(need)))
    missing = [n for n in need if n not in have]
    raise ValueError(
        f"{where}: the sources have {len(need)} channels ({', '.join(need)}); the input has {len(have)} "
        f"({', '.join(have)}) and lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
    )


def flat_windows(W: np.ndarray) -> np.ndarray:
    """(n, L, C) windows as (n, L·C) rows: what a FederatedDeviceLearner reads."""
    return np.asarray(W).reshape(len(W), -1)


def federation_setup(fed: Federation, key: str, window_s: float, *, calibration: int, top_k: int, target_inputs: str,
                     horizon: int | None, seed: int) -> DeviceSetup:
    """A device that starts from a loaded federation (:class:`fedotl.client.newuser.FederatedDeviceLearner`)."""
    from fedotl.client.newuser import CLIENT_KEYS, FederatedDeviceLearner

    card = fed.model.card
    if abs(float(card["window_seconds"]) - window_s) > 1e-9:
        raise ValueError(f"--window {window_s:g}: the federation's model reads {card['window_seconds']:g} s windows")
    if not fed.clients and key in CLIENT_KEYS:
        raise ValueError(f"{fed.run_dir}: no client shared its head, so {key} has no sources; try otl_global")

    def make():
        return FederatedDeviceLearner(fed, key, calibration=calibration, horizon=horizon,
                                      top_k=top_k, target_inputs=target_inputs, seed=seed)

    names = [c["name"] for c in card["channels"]]
    d = len(names) * len(ONLINE_STATS)
    return DeviceSetup(key, make, names, np.zeros(d), np.ones(d), False, 1.0, [c.client_id for c in fed.clients],
                       dict(zip(fed.model.labels, fed.model.classes)), encode=flat_windows)
