"""Online transfer on a target stream: build the domains, the sources, the learners.

A *domain* is a set of windows: a subject (at an optional body position) of
a dataset.  Sources may be other subjects, other body positions, or the
subjects of another dataset (on the activities both share).  The target domain is streamed window by window to the online
learners of :mod:`online`; the source domains are available offline and give
the fixed source classifiers:

* one averaged multi-class PA-I per source domain, for the multi-source
  learners (HomOTLMS, ODDM);
* one averaged PA-I over all source domains pooled, for the single-source
  learners (source only, PAIO, HomOTL-I/II, fixed-alpha HomOTL).

Features are the per-channel statistics of :data:`ONLINE_STATS` (45 DSADS
channels × 6 = 270 dimensions), standardised with the mean and standard
deviation of the pooled *source* windows: the target's own statistics are
never used offline.  With ``target_standardize="online"`` every learner is
wrapped in :class:`fedotl.online.TargetStandardized`, which re-standardises the
target stream causally with its own running statistics (shrunk towards the
source scale), for sources and targets whose sensors differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fedotl.client.features import ONLINE_STATS
from fedotl.online import (
    PAIO,
    FixedAlphaHomOTL,
    HomOTLMS,
    HomOTLODDM,
    MulticlassHomOTL1,
    MulticlassHomOTL2,
    MulticlassPA,
    ProjectedSource,
    SourceOnly,
    TargetStandardized,
)
from fedotl.online.sources import SourceClassifier, train_averaged_pa
from fedotl.simulations.dataset import HARDataset
from fedotl.simulations.splits import align_datasets
from fedotl.simulations.windows import make_windows

LEARNERS = ("pa", "source", "paio", "homotl1", "homotl2", "fixed", "homotlms", "oddm")
DEFAULT_LEARNERS = ("pa", "source", "paio", "homotl1", "homotl2", "homotlms", "oddm")
TARGET_STANDARDIZE = ("source", "online")


@dataclass
class Domain:
    name: str
    X: np.ndarray
    y: np.ndarray


@dataclass
class TransferTask:
    """Standardised features of the target stream and of each source domain."""

    target: Domain
    sources: list[Domain]
    feature_names: list[str]

    @property
    def pooled(self) -> Domain:
        return pool(self.sources)


def pool(domains: Sequence[Domain]) -> Domain:
    """All the domains' windows as one domain."""
    return Domain("+".join(d.name for d in domains), np.concatenate([d.X for d in domains]),
                  np.concatenate([d.y for d in domains]))


def domain_features(ds: HARDataset, window_s: float, stride_s: float | None) -> tuple:
    ws = make_windows(ds, window_s, stride_s)
    return ws, ws.features(stats=ONLINE_STATS, magnitude=False)


def build_task(
    ds: HARDataset,
    target_subject: str,
    source_subjects: Sequence[str] | None = None,
    target_position: str | None = None,
    source_position: str | None = None,
    window_s: float = 5.0,
    stride_s: float | None = None,
    source_ds: HARDataset | None = None,
) -> TransferTask:
    """Target = one subject (at a position); sources = other subjects (at a position).

    With positions set, each subject's windows use only that body unit's
    channels, so ``source_position="RA", target_position="LA"`` is the
    cross-position task.  Without ``source_subjects``, every other subject is
    a source (the target subject is one too when the positions differ).

    With ``source_ds`` (another dataset), the sources are its subjects and
    both sides keep only the activities the two datasets share, under common
    codes (:func:`fedotl.simulations.splits.align_datasets`).  The two views must
    have the same number of channels, e.g. one 9-channel body unit each.
    """
    if (target_position is None) != (source_position is None):
        raise ValueError("give both --source-position and --target-position, or neither")
    cross_dataset = source_ds is not None
    src = source_ds if cross_dataset else ds
    if target_subject not in ds.subjects:
        raise ValueError(f"unknown target subject {target_subject!r}; subjects are {ds.subjects}")
    same_view = not cross_dataset and target_position == source_position
    if source_subjects is None:
        source_subjects = [s for s in src.subjects if not (same_view and s == target_subject)]
    unknown = sorted(set(source_subjects) - set(src.subjects))
    if unknown:
        raise ValueError(f"unknown source subject(s) {unknown}; subjects are {src.subjects}")
    if same_view and target_subject in source_subjects:
        raise ValueError(f"target subject {target_subject} cannot also be a source in the same view")
    if not source_subjects:
        raise ValueError("no source subjects")
    tview = ds if target_position is None else ds.select_position(target_position)
    sview = src if source_position is None else src.select_position(source_position)
    tview, sview = tview.select_subjects([target_subject]), sview.select_subjects(source_subjects)
    if cross_dataset:
        tview, sview = align_datasets([tview, sview])
        if tview.n_channels != sview.n_channels:
            raise ValueError(
                f"target view has {tview.n_channels} channels, source view {sview.n_channels}: "
                "choose positions with matching sensors (e.g. --target-position RA --source-position hand)"
            )
    ws_t, Xt = domain_features(tview, window_s, stride_s)
    if len(np.unique(ws_t.y)) < 2:  # every learner would be right on every window: a 0.000 that means nothing
        raise ValueError(f"{ds.source or ds.name}: target {target_subject}'s windows hold {len(np.unique(ws_t.y))} class(es); "
                         "an online learner needs at least two")
    prefix = f"{src.name}:" if cross_dataset else ""
    sources = source_set(sview, source_subjects, window_s, stride_s, prefix, source_position)
    Xt = sources.standardize(Xt)
    order = np.lexsort((ws_t.start, ws_t.recording))  # the target stream in time order
    tname = target_subject + (f"@{target_position}" if target_position else "")
    return TransferTask(
        target=Domain(tname, Xt[order], ws_t.y[order]),
        sources=sources.domains,
        feature_names=ws_t.feature_names(ONLINE_STATS, magnitude=False),
    )


@dataclass
class SourceSet:
    """Source domains standardised with their pooled mean and std (which a target reuses)."""

    domains: list[Domain]
    mean: np.ndarray
    std: np.ndarray

    def standardize(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.std


def source_set(
    view: HARDataset,
    subjects: Sequence[str],
    window_s: float,
    stride_s: float | None,
    prefix: str = "",
    position: str | None = None,
) -> SourceSet:
    """One domain per subject of ``view``, features standardised with the pooled statistics."""
    ws, X = domain_features(view, window_s, stride_s)
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std < 1e-8] = 1.0  # constant features stay at 0 rather than blowing up
    X = (X - mean) / std
    domains = []
    for s in subjects:
        m = ws.subject == s
        if m.any():
            domains.append(Domain(prefix + s + (f"@{position}" if position else ""), X[m], ws.y[m]))
    return SourceSet(domains, mean, std)


def source_classifier(d: Domain, epochs: int = 5, seed: int = 0) -> SourceClassifier:
    """An averaged multi-class PA-I trained offline on one source domain."""
    return train_averaged_pa(d.X, d.y, epochs=epochs, seed=seed, name=d.name)


def learner_factories(
    task: TransferTask,
    names: Sequence[str],
    seed: int = 0,
    oddm_target_slice: int = 50,
    target_standardize: str = "source",
    prior_weight: float = 20.0,
) -> dict[str, Callable[[], object]]:
    """Fresh-learner factories for the named learners (sources are built once).

    ``target_standardize="source"`` streams the task's features as they are
    (standardised with the sources' statistics).  ``"online"`` wraps every
    learner in :class:`fedotl.online.TargetStandardized` with ``prior_weight``, so
    each target window is re-standardised with the windows before it; ODDM's
    unlabelled JDA slice is then standardised the same causal way, so that the
    projections are fitted in the space the learner streams through.
    """
    unknown = [n for n in names if n not in LEARNERS]
    if unknown:
        raise ValueError(f"unknown learner(s) {unknown}; choose from {', '.join(LEARNERS)}")
    if target_standardize not in TARGET_STANDARDIZE:
        raise ValueError(
            f"target_standardize must be one of {', '.join(TARGET_STANDARDIZE)}, got {target_standardize!r}"
        )
    online_std = target_standardize == "online"
    # built (and prior_weight checked) before any source is trained; fresh, so it learns nothing
    standardizer = TargetStandardized(MulticlassPA(), prior_weight) if online_std else None
    Xu = None
    if "oddm" in names:
        # JDA sees only an unlabelled slice of the target: its first windows in time.
        Xu = task.target.X[:oddm_target_slice]
        if standardizer is not None:
            Xu = standardizer.standardize(Xu)
    out = source_learners(task.sources, names, horizon=len(task.target.y), seed=seed, oddm_unlabelled=Xu)
    if online_std:
        return {n: (lambda f=f: TargetStandardized(f(), prior_weight)) for n, f in out.items()}
    return out


def source_learners(
    sources: Sequence[Domain],
    names: Sequence[str],
    horizon: int,
    seed: int = 0,
    oddm_unlabelled: np.ndarray | None = None,
) -> dict[str, Callable[[], object]]:
    """Fresh-learner factories over source domains (each source classifier is trained once).

    ``horizon`` is the stream length T that HomOTL-II's and the Hedge ensembles' learning rates
    are tuned for; ODDM also needs ``oddm_unlabelled``, an unlabelled slice of the target.
    """
    unknown = [n for n in names if n not in LEARNERS]
    if unknown:
        raise ValueError(f"unknown learner(s) {unknown}; choose from {', '.join(LEARNERS)}")
    if "oddm" in names and oddm_unlabelled is None:
        raise ValueError("oddm needs an unlabelled slice of the target stream")
    if set(names) - {"pa"} and not sources:
        raise ValueError(f"learner(s) {sorted(set(names) - {'pa'})} need source subjects")
    T = horizon
    needs_pooled = {"source", "paio", "homotl1", "homotl2", "fixed"} & set(names)
    pooled = None
    if needs_pooled:
        pooled = source_classifier(pool(sources), seed=seed)
    per_source = tuple(source_classifier(d, seed=seed) for d in sources) if "homotlms" in names else ()
    out: dict[str, Callable[[], object]] = {}
    for n in names:
        if n == "pa":
            out[n] = lambda: MulticlassPA(variant="PA-I", C=1.0)
        elif n == "source":
            out[n] = lambda: SourceOnly(pooled)
        elif n == "paio":
            out[n] = lambda: PAIO(pooled)
        elif n == "homotl1":
            out[n] = lambda: MulticlassHomOTL1(pooled)
        elif n == "homotl2":
            out[n] = lambda: MulticlassHomOTL2(pooled, horizon=T)
        elif n == "fixed":
            out[n] = lambda: FixedAlphaHomOTL(pooled, alpha=0.5)
        elif n == "homotlms":
            out[n] = lambda: HomOTLMS(per_source, horizon=T)
        elif n == "oddm":
            projected = tuple(ProjectedSource.fit(d.X, d.y, oddm_unlabelled, name=d.name) for d in sources)
            out[n] = lambda p=projected: HomOTLODDM(p, horizon=T)
    return out

