"""A new user's device, started from a federation: sources chosen by distance, learners on the embedding.

FedHealth's new user (Chen et al. 2020, Fig. 1): the cloud model was trained by
federation on other users; a device it has never seen starts from it and
adapts online as its own labels arrive.  Given a federation's run directory
(:mod:`fedotl.client.model_card`) and the device's first *unlabelled*
windows (the calibration windows), :class:`NewUserKit`:

1. standardises the model's inputs and the hand features with the
   calibration windows' statistics (per device, as every federated device did
   with its own windows);
2. embeds the calibration windows with the frozen global extractor and
   measures their distance (:mod:`fedotl.client.summary`: MMD, or the proxy
   A-distance) to each shared client's feature summary, keeping the ``top_k``
   nearest, or all;
3. builds the online learners (``learner_factories``), every one scoring the
   same encoded windows (:meth:`NewUserKit.encode`):

   ``global``
       the global head, never updated;
   ``pa_features`` / ``pa_embedding``
       PA-I from scratch on the hand features / on the embedding;
   ``otl_global``
       HomOTL-I (Zhao & Hoi 2010) with the global head as its source;
   ``homotlms_all`` / ``homotlms_topk``
       HomOTLMS (Wu et al. 2017) over every shared client's personalised
       bottleneck and head (and the global head, ``include_global``) / over
       the ``top_k`` nearest;
   ``oddm_topk``
       HomOTL-ODDM (Du et al. 2020) over the same ``top_k``, on the embedding.

The sources score the conv block's output (each client's own bottleneck and
head on it); the ensembles' own PA-I learner reads ``target_inputs``: the hand
features, the embedding, or both (``target_start`` of the ensembles).  Where
the hand features are the stronger input, the ensemble then tracks PA on them
up to its regret.

Deviations, written down:

* ODDM needs the sources' *data* for its JDA projection, and the clients'
  windows never leave them.  Its sources are therefore fitted on samples drawn
  from each client's summary: per class, N(class mean, pooled within-class
  covariance) in the embedding space, as many as the class had windows.
* The calibration windows only calibrate: the learners are evaluated on the
  windows after them (``fedotl newuser``), so that no window both sets the
  statistics and is scored.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fedotl.client.features import ONLINE_STATS, window_features
from fedotl.client.model_card import ClientShare, Federation, fc_embed, fc_scores
from fedotl.client.summary import DISTANCES, check_summary, rank_sources
from fedotl.online import HomOTLMS, HomOTLODDM, MulticlassHomOTL1, MulticlassPA, ProjectedSource
from fedotl.online.sources import SourceClassifier

TARGET_INPUTS = ("features", "embedding", "both")
ONLINE_KEYS = ("pa_features", "pa_embedding", "otl_global", "homotlms_all", "homotlms_topk", "oddm_topk")
CLIENT_KEYS = ("homotlms_all", "homotlms_topk", "oddm_topk")  # the learners that need the clients' shared heads
FIXED_KEYS = ("global",)
# Chosen on a split that is never reported: a p1–p4 federation, p5 and p6 as new users (docs/results.md).
DEFAULT_TOP_K = 5
DEFAULT_CALIBRATION = 100
DEFAULT_TARGET_INPUTS = "both"
DEFAULT_ODDM_MU = 0.001
#: Each learner in a few words (the reports show these beside the keys).
DESCRIPTIONS = {
    "global": "the federated global model as it is",
    "pa_features": "PA-I on the hand features, from scratch",
    "pa_embedding": "PA-I on the global model's embedding",
    "otl_global": "HomOTL-I: the global head beside a PA-I of the device",
    "homotlms_all": "HomOTLMS: the global head and every client's head, beside a PA-I of the device",
    "homotlms_topk": f"HomOTLMS: the global head and the top-k nearest clients' heads (by distance; k = {DEFAULT_TOP_K} by default), beside a PA-I of the device",
    "oddm_topk": f"HomOTL-ODDM over the top-k nearest clients' heads (k = {DEFAULT_TOP_K} by default)",
    "personalized_offline": "FedHealth's personalisation with the labels in advance (a reference, not online)",
}


@dataclass
class Encoded:
    """A batch of windows as every learner reads them."""

    conv: np.ndarray  # (n, m) the global conv block's output
    embedding: np.ndarray  # (n, d) the global bottleneck's output
    features: np.ndarray  # (n, F) hand features, standardised

    def rows(self, kind: str) -> np.ndarray:
        """The learner inputs of ``kind``: ``features``, ``embedding``, or ``conv+<target inputs>``."""
        blocks = {"features": [self.features], "embedding": [self.embedding], "both": [self.embedding, self.features]}
        if kind.startswith("conv+"):
            return np.hstack([self.conv, *blocks[kind[5:]]])
        return np.hstack(blocks[kind]) if len(blocks[kind]) > 1 else blocks[kind][0]


def _source(fc: dict, classes: Sequence[int], m: int, width: int, name: str) -> SourceClassifier:
    """A client's (or the global) bottleneck and head over the first ``m`` columns of a row of ``width``."""
    return SourceClassifier(
        fc["head.weight"], fc["head.bias"], classes=tuple(classes),
        transform=lambda X, fc=fc: fc_embed(X[..., :m], fc), n_features=width, name=name,
    )


def pseudo_source(share: ClientShare, classes: Sequence[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings drawn from a client's summary: per class, N(class mean, within-class covariance)."""
    s = share.summary
    rng = np.random.default_rng([seed, zlib.crc32(share.client_id.encode())])  # str hash() differs per process
    cov = np.asarray(s["within_cov"], dtype=np.float64)
    Xs, ys = [], []
    for k, count in enumerate(np.asarray(s["class_count"]).tolist()):
        if count > 0:
            Xs.append(rng.multivariate_normal(s["class_mean"][k], cov, size=int(count), method="eigh"))
            ys.extend([classes[k]] * int(count))
    return np.vstack(Xs), np.asarray(ys)


class NewUserKit:
    """Everything a new device builds from a federation and its calibration windows.

    Parameters
    ----------
    federation
        :func:`fedotl.client.model_card.load_federation` of the run directory.
    calibration
        The device's first unlabelled raw windows, (n, L, C) with the card's channels.
    top_k
        Sources kept by distance (0: all).
    distance
        ``mmd`` or ``a-distance`` (:mod:`fedotl.client.summary`).
    target_inputs
        What the ensembles' own PA-I learner reads: ``features``, ``embedding`` or ``both``.
    include_global
        Add the global head to HomOTLMS's sources.
    label_names
        Label the sources' classes by the card's activity names (a streaming device's labels)
        rather than by their codes (a dataset's).
    oddm_mu
        μ of ODDM's online projection update (:class:`fedotl.online.HomOTLODDM`).
    """

    def __init__(
        self,
        federation: Federation,
        calibration: np.ndarray,
        *,
        top_k: int = DEFAULT_TOP_K,
        distance: str = "mmd",
        target_inputs: str = DEFAULT_TARGET_INPUTS,
        include_global: bool = True,
        C: float = 1.0,
        seed: int = 0,
        label_names: bool = False,
        oddm_mu: float = DEFAULT_ODDM_MU,
    ):
        if target_inputs not in TARGET_INPUTS:
            raise ValueError(f"target inputs must be one of {', '.join(TARGET_INPUTS)}, got {target_inputs!r}")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
        calibration = np.asarray(calibration, dtype=np.float32)
        if calibration.ndim != 3 or len(calibration) < 2:
            raise ValueError(f"need at least 2 calibration windows (n, L, C), got shape {calibration.shape}")
        self.federation = federation
        self.model = federation.model
        self.classes = self.model.labels if label_names else self.model.classes
        self.target_inputs = target_inputs
        self.include_global = include_global
        self.C = C
        self.seed = seed
        self.oddm_mu = oddm_mu
        inputs = self.model.inputs(calibration)
        self.input_mean, self.input_std = self.model.standardiser(inputs)
        hand = window_features(calibration, (), ONLINE_STATS).astype(np.float64)
        std = hand.std(0)
        self.feat_mean, self.feat_std = hand.mean(0), np.where(std > 1e-8, std, 1.0)
        self.calibration = self.encode(calibration)
        shares = {c.client_id: c for c in federation.clients}
        for c in shares.values():
            check_summary(c.summary, self.calibration.embedding.shape[1], f"client {c.client_id}")
        self.shares = shares
        self.distances, self.chosen = ({}, []) if not shares else rank_sources(
            self.calibration.embedding, {k: c.summary for k, c in shares.items()}, distance, top_k, seed
        )
        self.distance = distance
        self.top_k = top_k

    # ------------------------------------------------------------ encoding
    def encode(self, windows: np.ndarray) -> Encoded:
        """Raw (n, L, C) windows → conv output, embedding and standardised hand features."""
        windows = np.asarray(windows, dtype=np.float32)
        X = (self.model.inputs(windows) - self.input_mean) / self.input_std
        conv = self.model.conv(X)
        hand = window_features(windows, (), ONLINE_STATS).astype(np.float64)
        return Encoded(conv, fc_embed(conv, self.model.fc), (hand - self.feat_mean) / self.feat_std)

    def global_predictions(self, enc: Encoded) -> np.ndarray:
        """The global model's class codes for encoded windows."""
        scores = fc_scores(enc.conv, self.model.fc)
        return np.asarray(self.classes)[scores.argmax(1)]

    # ------------------------------------------------------------ learners
    @property
    def ensemble_input(self) -> str:
        return f"conv+{self.target_inputs}"

    def _sources(self, ids: Sequence[str], width: int, with_global: bool) -> tuple[SourceClassifier, ...]:
        m = self.calibration.conv.shape[1]
        out = [_source(self.shares[i].fc, self.classes, m, width, i) for i in ids]
        if with_global:
            out.append(_source(self.model.fc, self.classes, m, width, "global"))
        return tuple(out)

    def learner_factories(self, horizon: int | None, names: Sequence[str] = ONLINE_KEYS) -> dict[str, tuple[str, Callable[[], object]]]:
        """``{key: (input kind, factory)}``: fresh learners and the rows (:meth:`Encoded.rows`) they read.

        ``horizon`` is the Hedge horizon T of HomOTLMS and ODDM (None: anytime).
        """
        unknown = sorted(set(names) - set(ONLINE_KEYS))
        if unknown:
            raise ValueError(f"unknown learner(s) {unknown}; choose from {', '.join(ONLINE_KEYS)}")
        enc = self.calibration
        m = enc.conv.shape[1]
        width = enc.rows(self.ensemble_input).shape[1]
        C = self.C
        out: dict[str, tuple[str, Callable[[], object]]] = {}
        for name in names:
            if name == "pa_features":
                out[name] = ("features", lambda: MulticlassPA(variant="PA-I", C=C))
            elif name == "pa_embedding":
                out[name] = ("embedding", lambda: MulticlassPA(variant="PA-I", C=C))
            elif name == "otl_global":
                (g,) = self._sources([], width, True)
                out[name] = (self.ensemble_input, lambda g=g: MulticlassHomOTL1(g, C=C, target_start=m))
            elif name in ("homotlms_all", "homotlms_topk"):
                ids = sorted(self.shares) if name == "homotlms_all" else self.chosen
                srcs = self._sources(ids, width, self.include_global)
                out[name] = (self.ensemble_input, lambda s=srcs: HomOTLMS(s, C=C, horizon=horizon, target_start=m))
            elif name == "oddm_topk":
                projected = self.oddm_sources()
                out[name] = ("embedding", lambda p=projected: HomOTLODDM(p, C=C, mu=self.oddm_mu, horizon=horizon))
        return out

    def oddm_sources(self) -> tuple[ProjectedSource, ...]:
        """ODDM's projected sources, fitted on samples of the chosen clients' summaries (see the module docstring)."""
        out = []
        n_comp = min(20, self.calibration.embedding.shape[1])
        for cid in self.chosen:
            Xs, ys = pseudo_source(self.shares[cid], self.classes, self.seed)
            out.append(ProjectedSource.fit(Xs, ys, self.calibration.embedding, n_components=n_comp, seed=self.seed, name=cid))
        return tuple(out)

    def report(self) -> dict:
        """The chosen sources and every distance, for the JSON."""
        return {
            "distance": self.distance,
            "top_k": self.top_k,
            "chosen": list(self.chosen),
            "distances": {k: round(v, 6) for k, v in sorted(self.distances.items(), key=lambda kv: kv[1])},
            "target_inputs": self.target_inputs,
            "include_global": self.include_global,
            "oddm_mu": self.oddm_mu,
        }


class FederatedDeviceLearner:
    """A streaming device's learner that starts from a federation (``fedotl device --federation``).

    It reads each closed window's raw samples, flattened (``window_rows × channels``
    values).  For the first ``calibration`` windows it predicts with the global
    model, its inputs standardised with the windows seen so far, and keeps the
    windows (and any labels that arrive) unlabelled-first, as a new device would.
    At the ``calibration``-th window it builds the :class:`NewUserKit` from them
    (statistics, distances, the ``top_k`` sources), creates the learner ``key``
    (:data:`ONLINE_KEYS`) and teaches it the labels already known; from then on
    that learner predicts and learns.  The array API is the one
    :class:`fedotl.client.device.PerDeviceLearners` drives.
    """

    def __init__(self, federation: Federation, key: str = "otl_global", *, calibration: int = DEFAULT_CALIBRATION,
                 horizon: int | None = None, **kit_options):
        if key not in ONLINE_KEYS:
            raise ValueError(f"unknown learner {key!r}; choose from {', '.join(ONLINE_KEYS)}")
        if calibration < 2:
            raise ValueError(f"calibration needs at least 2 windows, got {calibration}")
        self.federation = federation
        self.key = key
        self.calibration = calibration
        self.horizon = horizon
        self.kit_options = kit_options
        card = federation.model.card
        self.shape = (int(card["window_rows"]), len(card["channels"]))
        self.kit: NewUserKit | None = None
        self.learner = None
        self.kind = ""
        self._seen: list[np.ndarray] = []
        self._labelled: list[tuple[np.ndarray, object]] = []
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        self._scored: tuple[int, np.ndarray, np.ndarray] | None = None

    def _window(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.size != self.shape[0] * self.shape[1]:
            raise ValueError(f"a window of {x.size} values; the global model reads {self.shape[0]} × {self.shape[1]}")
        return x.reshape(1, *self.shape)

    def _global_scores(self, w: np.ndarray) -> np.ndarray:
        """The global model's scores of ``w``, inputs standardised with the windows seen so far
        (the last window's are cached: predict and proba ask for the same one)."""
        if self._scored is not None and self._scored[0] == len(self._seen) and np.array_equal(self._scored[1], w):
            return self._scored[2]
        model = self.federation.model
        ref = model.inputs(np.concatenate(self._seen or [w]))
        mean, std = model.standardiser(ref)
        scores = fc_scores(model.conv((model.inputs(w) - mean) / std), model.fc)[0]
        self._scored = (len(self._seen), w, scores)
        return scores

    def _calibrated(self) -> None:
        self.kit = NewUserKit(self.federation, np.concatenate(self._seen), label_names=True, **self.kit_options)
        self.kind, factory = self.kit.learner_factories(self.horizon, [self.key])[self.key]
        self.learner = factory()
        for w, y in self._labelled:
            self.learner.learn_array(self.kit.encode(w).rows(self.kind)[0], y)
        self._seen, self._labelled = [], []

    def _rows(self, x: np.ndarray) -> np.ndarray:
        """The inner learner's input for a window (the last one is cached: predict, proba, learn)."""
        if self._cache is not None and np.array_equal(self._cache[0], x):
            return self._cache[1]
        rows = self.kit.encode(self._window(x)).rows(self.kind)[0]  # type: ignore[union-attr]
        self._cache = (np.array(x, copy=True), rows)
        return rows

    @property
    def classes_(self) -> list:
        return list(self.federation.model.labels)

    def predict_array(self, x: np.ndarray):
        """Predict a window: the global model while calibrating (the window is kept), then the learner."""
        if self.learner is not None:
            return self.learner.predict_array(self._rows(x))
        w = self._window(x)
        self._seen.append(w)
        label = self.federation.model.labels[int(self._global_scores(w).argmax())]
        if len(self._seen) >= self.calibration:
            self._calibrated()
        return label

    def predict_proba_array(self, x: np.ndarray) -> np.ndarray:
        if self.learner is not None:
            return np.asarray(self.learner.predict_proba_array(self._rows(x)))
        scores = self._global_scores(self._window(x))
        p = np.exp(scores - scores.max())
        return p / p.sum()

    def learn_array(self, x: np.ndarray, y) -> None:
        if self.learner is None:
            self._labelled.append((self._window(x), y))
            return
        self.learner.learn_array(self._rows(x), y)
