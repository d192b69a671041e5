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

ODDM fits its JDA projections on an unlabelled slice of the target, which the
authors hold out of the stream (their first 30% of the target).  :func:`build_task`
holds out ``oddm_slice`` of the target's windows (:data:`ODDM_SLICE` = 0.3 by
default, :func:`hold_out`) and the task's ``target`` is the remaining stream.
*Every* learner is evaluated on that same remaining stream, whether or not ODDM
is among them, so the columns of one run, and of runs with other learners, stay
comparable.  The slice is drawn at random (seeded) by default: DSADS records one
activity after another, so the first 30% in time order holds only 6 of the 19
activities (5 of them whole), and holding it out would drop 5 activities from
the stream (and give JDA a slice of 6 activities).  A random slice covers all
activities, but its windows neighbour streamed windows of the same bout.
``oddm_slice_from="start"`` takes the first windows in time order instead, as
the authors do; ``oddm_slice=0`` streams every window (ODDM then cannot run).
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
from fedotl.online.oddm import MU_UNIT
from fedotl.online.sources import SourceClassifier, train_averaged_pa
from fedotl.simulations.dataset import HARDataset
from fedotl.simulations.splits import align_datasets
from fedotl.simulations.windows import make_windows

LEARNERS = ("pa", "source", "paio", "homotl1", "homotl2", "fixed", "homotlms", "oddm")
DEFAULT_LEARNERS = ("pa", "source", "paio", "homotl1", "homotl2", "homotlms", "oddm")
TARGET_STANDARDIZE = ("source", "online")
ODDM_SLICE = 0.3  # share of the target held out as ODDM's unlabelled JDA slice (the authors' 30%)
SLICE_FROM = ("random", "start")  # where the slice is taken: at random (seeded), or first in time


@dataclass
class Domain:
    name: str
    X: np.ndarray
    y: np.ndarray


@dataclass
class TransferTask:
    """Standardised features of the target stream and of each source domain.

    ``target`` is the evaluated stream (time order); ``unlabeled`` the windows held out of it
    for ODDM's JDA (``None`` when nothing is held out).  Its labels are kept for inspection
    only: no learner is given them.
    """

    target: Domain
    sources: list[Domain]
    feature_names: list[str]
    unlabeled: Domain | None = None

    @property
    def pooled(self) -> Domain:
        return pool(self.sources)


def pool(domains: Sequence[Domain]) -> Domain:
    """All the domains' windows as one domain."""
    return Domain("+".join(d.name for d in domains), np.concatenate([d.X for d in domains]),
                  np.concatenate([d.y for d in domains]))


def hold_out(n: int, fraction: float, where: str = "random", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split positions 0..n-1 into (slice, stream), both sorted (time order kept).

    The slice has ``round(fraction * n)`` positions (at least one when ``fraction > 0``),
    drawn at random with ``seed`` or, with ``where="start"``, the first ones.

    >>> hold_out(10, 0.3, "start")
    (array([0, 1, 2]), array([3, 4, 5, 6, 7, 8, 9]))
    >>> sl, st = hold_out(10, 0.3, seed=1); len(sl), len(st), set(sl) & set(st)
    (3, 7, set())
    """
    if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
        raise ValueError(f"the ODDM slice must be a fraction in [0, 1), got {fraction!r}")
    if where not in SLICE_FROM:
        raise ValueError(f"the ODDM slice is taken from one of {', '.join(SLICE_FROM)}, got {where!r}")
    k = max(1, round(fraction * n)) if fraction > 0 else 0
    if where == "start":
        sl = np.arange(k)
    else:
        sl = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
    return sl, np.setdiff1d(np.arange(n), sl)


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
    oddm_slice: float = ODDM_SLICE,
    oddm_slice_from: str = "random",
    seed: int = 0,
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

    ``oddm_slice`` of the target's windows (taken ``oddm_slice_from`` "random", with
    ``seed``, or the "start" in time order; :func:`hold_out`) become the unlabelled
    slice ``unlabeled`` and are removed from the stream ``target`` that every learner is
    evaluated on.
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
    Xt, yt = Xt[order], ws_t.y[order]
    tname = target_subject + (f"@{target_position}" if target_position else "")
    sl, st = hold_out(len(yt), oddm_slice, oddm_slice_from, seed)
    if len(np.unique(yt[st])) < 2:
        raise ValueError(f"after holding out the ODDM slice, target {tname}'s stream holds fewer than two classes")
    return TransferTask(
        target=Domain(tname, Xt[st], yt[st]),
        sources=sources.domains,
        feature_names=ws_t.feature_names(ONLINE_STATS, magnitude=False),
        unlabeled=Domain(tname + ":slice", Xt[sl], yt[sl]) if len(sl) else None,
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
    target_standardize: str = "source",
    prior_weight: float = 20.0,
    oddm_mu_unit: float = MU_UNIT,
) -> dict[str, Callable[[], object]]:
    """Fresh-learner factories for the named learners (sources are built once).

    ODDM's JDA sees ``task.unlabeled`` (held out of ``task.target`` by :func:`build_task`),
    never a window of the evaluated stream; ``oddm_mu_unit`` is its update strength per unit
    of feature scale (:class:`fedotl.online.HomOTLODDM`).

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
        if task.unlabeled is None:
            raise ValueError("oddm needs an unlabelled target slice held out of the stream (build_task's oddm_slice > 0)")
        # JDA sees only the held-out slice, disjoint from the evaluated stream (as the authors)
        Xu = task.unlabeled.X
        if standardizer is not None:
            Xu = standardizer.standardize(Xu)
    out = source_learners(task.sources, names, horizon=len(task.target.y), seed=seed, oddm_unlabelled=Xu,
                          oddm_mu_unit=oddm_mu_unit)
    if online_std:
        return {n: (lambda f=f: TargetStandardized(f(), prior_weight)) for n, f in out.items()}
    return out


def source_learners(
    sources: Sequence[Domain],
    names: Sequence[str],
    horizon: int,
    seed: int = 0,
    oddm_unlabelled: np.ndarray | None = None,
    oddm_mu_unit: float = MU_UNIT,
) -> dict[str, Callable[[], object]]:
    """Fresh-learner factories over source domains (each source classifier is trained once).

    ``horizon`` is the stream length T that HomOTL-II's and the Hedge ensembles' learning rates
    are tuned for; ODDM also needs ``oddm_unlabelled``, an unlabelled slice of the target kept
    out of the stream it is evaluated on.
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
            out[n] = lambda p=projected: HomOTLODDM(p, mu_unit=oddm_mu_unit, horizon=T)
    return out

