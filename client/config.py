"""The run config: every key declared once, with its type, default, constraint and help.

Everything else derives from :data:`KEYS` or is held to it by a test:

* pyproject's ``[tool.flwr.app.config]`` holds exactly the app keys with these
  defaults (``flwr run .`` reads that table; tests/client/test_config.py
  compares the two);
* ``fedotl simulate``'s flags take their type, default and help from here;
* ``--set KEY=VALUE`` (simulate and the deployment launcher) parses with
  :func:`parse_value`;
* the ServerApp and the ClientApp read :class:`RunConfig`, which validates
  every value and every rule between keys, and the harness runs the same
  validation before Ray starts.

Two scopes: ``app`` keys are read by the ServerApp or the ClientApp (they
are the Flower run config); ``harness`` keys say how the simulation harness
cuts a dataset into device stores, and never reach a Flower app.

>>> cfg = RunConfig({"strategy": "fedprox", "learning-rate": 0.01})
>>> cfg.strategy, cfg.learning_rate, cfg.local_epochs
('fedprox', 0.01, 2)
>>> parse_value("num-server-rounds", "5"), parse_value("augment", "off")
(5, False)
>>> RunConfig({"learning-rate": -1.0})
Traceback (most recent call last):
...
ValueError: learning-rate must be > 0, got -1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

from fedotl.client.protocol import AGGREGATIONS, ATTACKS, DP_MODES, FAIL_MODES, FEDHEALTH_AGGREGATIONS, MODELS, STRATEGIES

Value = bool | int | float | str
CLIENTS_BY = ("subject", "subject-position", "dirichlet")


@dataclass(frozen=True)
class Key:
    """One run-config key.  Its type is the type of its default."""

    name: str
    default: Value
    help: str
    scope: str = "app"  # "app": the Flower apps read it; "harness": the simulation harness only
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    positive: bool = False  # strictly > 0

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def attr(self) -> str:
        """The Python name: ``learning-rate`` → ``learning_rate``."""
        return self.name.replace("-", "_")

    def check(self, value: object) -> Value:
        """``value`` as this key's type, or ``ValueError`` naming the key."""
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return value
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise ValueError(f"{self.name} must be an integer, got {value!r}")
            value = int(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} must be a number, got {value!r}")
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{self.name} must be finite, got {value!r}")
        else:
            value = str(value)
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.positive and not value > 0:  # type: ignore[operator]
            raise ValueError(f"{self.name} must be > 0, got {value!r}")
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise ValueError(f"{self.name} must be >= {self.minimum:g}, got {value!r}")
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise ValueError(f"{self.name} must be <= {self.maximum:g}, got {value!r}")
        return value  # type: ignore[return-value]


H = "harness"
KEYS: tuple[Key, ...] = (
    # ---------------------------------------------------------------- data (harness)
    Key("dataset", "dsads", "dataset the harness cuts into devices (dsads, pamap2, opportunity, generic, synthetic)", H),
    Key("data-path", "", "the dataset's path (synthetic: devices=N,classes=K,...)", H),
    Key("clients-by", "subject-position", "a device is a subject, one body unit of a subject, or a Dirichlet label-skew share", H, choices=CLIENTS_BY),
    Key("dirichlet-clients", 10, "devices of the Dirichlet partition (clients-by dirichlet)", H, minimum=1),
    Key("dirichlet-alpha", 0.5, "Dirichlet concentration: small gives each device few activities (clients-by dirichlet)", H, positive=True),
    Key("window-seconds", 5.0, "window length in seconds (5 s: DSADS's segments)", H, positive=True),
    Key("rate-hz", 0.0, "sampling rate of a generic CSV without timestamps (0: not given)", H, minimum=0),
    Key("label-track", "", "OPPORTUNITY label track, locomotion or gesture ('': the reader's default)", H, choices=("", "locomotion", "gesture")),
    Key("server-subjects", "", "comma-separated subjects whose data the server holds (cloud pretraining); they leave the federation", H),
    Key("attackers", 0.0, "share of the devices that attack (run config attack); the harness draws them from the seed into attack-partitions", H, minimum=0, maximum=0.99),
    Key("holdout-subjects", "", "comma-separated subjects kept out of the federation and the server (new users of fedotl newuser)", H),
    # ---------------------------------------------------------------- the device's data
    Key("data-dir", "", "folder of device stores (<data-dir>/devices/<partition-id>, <data-dir>/cloud); a SuperNode's node config data-dir names its own store"),
    Key("train-fraction", 0.7, "earliest share of each device's windows per activity used for training", minimum=0.0, maximum=1.0),
    # ---------------------------------------------------------------- strategy
    Key("strategy", "fedhealth", "federated strategy", choices=STRATEGIES),
    Key("num-server-rounds", 30, "federated rounds", minimum=1),
    Key("local-epochs", 2, "local epochs per round", minimum=1),
    Key("batch-size", 32, "mini-batch size", minimum=2),
    Key("learning-rate", 0.001, "Adam learning rate of local training and cloud pretraining", positive=True),
    Key("proximal-mu", 0.01, "FedProx proximal weight μ", minimum=0),
    Key("fedhealth-proximal-mu", 0.0, "proximal weight in FedHealth's federated rounds", minimum=0),
    Key("fedhealth-aggregation", "fedavg", "aggregation in FedHealth's federated rounds", choices=FEDHEALTH_AGGREGATIONS),
    Key("fedap-momentum", 0.5, "FedAP self-weight λ", minimum=0, maximum=1),
    Key("fedap-pretrain-rounds", 5, "FedAP (and fedhealth over fedap) without server-held data: FedAvg rounds, BatchNorm included, before the BatchNorm statistics are taken; part of num-server-rounds (at most num-server-rounds − 1)", minimum=0),
    Key("aggregation", "mean", "how a round combines the updates: the example-weighted mean, or one of Flower's robust rules (fedavg, fedprox, fedhealth over fedavg)", choices=AGGREGATIONS),
    Key("trim-fraction", 0.2, "trimmed-mean: share of the updates cut at each end, per coordinate (Flower's FedTrimmedAvg beta)", minimum=0, maximum=0.49),
    Key("byzantine-fraction", 0.2, "krum, multikrum, bulyan: share f/n of each round's updates assumed malicious", minimum=0, maximum=0.49),
    Key("fraction-train", 1.0, "Flower: share of the connected nodes sampled for training per round (at least min-train-nodes)", positive=True, maximum=1.0),
    # ---------------------------------------------------------------- model and training
    Key("model", "cnn", "1-D CNN on windows, or MLP on window features", choices=MODELS),
    Key("model-width", 32, "channels of the first conv layer (MLP: hidden width)", minimum=1),
    Key("bottleneck", 64, "width of the bottleneck (alignment) layer", minimum=1),
    Key("augment", True, "jitter, scaling and time-shift augmentation in local training"),
    Key("seed", 0, "seed of every random choice"),
    Key("pretrain-epochs", 20, "cloud pretraining epochs on the server-held data", minimum=1),
    Key("personalize-epochs", 30, "FedHealth personalisation epochs", minimum=1),
    Key("personalize-learning-rate", 0.001, "FedHealth personalisation learning rate", positive=True),
    # Deep CORAL's rule (λ·CORAL ≈ CE at the end of personalisation), on the training losses of a seed-3
    # calibration run that is never reported (docs/federated.md, "Calibrating λ"); at 1.0, λ·CORAL was ~3% of CE.
    Key("coral-weight", 300.0, "λ of the CORAL loss in personalisation", minimum=0),
    Key("share-heads", False, "FedHealth: each device also sends its personalised head and a summary of its bottleneck features, for new users (fedotl simulate turns it on)"),
    # ---------------------------------------------------------------- rounds
    Key("min-available-nodes", 2, "Flower: nodes that must be connected before round 1; later rounds wait only for min-train-nodes (min-evaluate-nodes), and at most round-timeout, so a device lost for good never stalls the run", minimum=0),
    Key("min-train-nodes", 2, "Flower: nodes sampled for training per round", minimum=0),
    Key("min-evaluate-nodes", 2, "Flower: nodes sampled for evaluation per round", minimum=0),
    Key("min-replies", 1, "usable train replies needed to update the model in a round", minimum=1),
    Key("round-timeout", 3600.0, "seconds a round waits for replies", positive=True),
    Key("eval-every", 1, "evaluate every K rounds (and the last)", minimum=1),
    Key("out-dir", "", "run directory the ServerApp writes (absolute under flwr run)"),
    Key("resume", False, "continue the run in out-dir from its last checkpoint (fedavg, fedprox, fedhealth over fedavg; see fedotl/server/checkpoint.py)"),
    Key("progress", True, "progress bar of the rounds"),
    # ---------------------------------------------------------------- privacy
    Key("dp", "none", "Flower's central DP with fixed clipping", choices=DP_MODES),
    Key("dp-noise-multiplier", 0.0, "DP noise multiplier z", minimum=0),
    Key("dp-clipping-norm", 10.0, "DP clipping norm C", positive=True),
    Key("secagg", False, "Flower's SecAgg+ on every train round"),
    Key("secagg-num-shares", 0.0, "SecAgg+ shares per device (> 1: a count, <= 1: a fraction, 0: 2⌈log₂ n⌉+1)", minimum=0),
    Key("secagg-reconstruction-threshold", 0.5, "SecAgg+ shares needed to reconstruct (count or fraction)", positive=True),
    Key("secagg-max-weight", 10000.0, "SecAgg+ largest example count a device may have", positive=True),
    Key("secagg-clipping-range", 8.0, "SecAgg+ range of the quantised, weighted update", positive=True),
    # ---------------------------------------------------------------- fault injection (tests)
    Key("fail-partition", -1, "partition that fails on purpose (-1: none)"),
    Key("fail-round", 0, "round in which fail-partition fails"),
    Key("fail-mode", "raise", "raise an error, or hang for fail-seconds", choices=FAIL_MODES),
    Key("fail-seconds", 30.0, "how long a hanging node sleeps", minimum=0),
    Key("attack", "none", "simulated poisoning by the attack-partitions (fedotl.client.attacks)", choices=ATTACKS),
    Key("attack-partitions", "", "comma-separated partition ids that attack (fedotl simulate --attackers picks them)"),
    Key("attack-scale", 10.0, "sign-flip and gaussian: the attack's size in honest updates", positive=True),
)
BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}
DEFAULTS: dict[str, Value] = {k.name: k.default for k in KEYS}
APP_KEYS: tuple[str, ...] = tuple(k.name for k in KEYS if k.scope == "app")
_BY_ATTR: dict[str, Key] = {k.attr: k for k in KEYS}


def key(name: str) -> Key:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"{name}: unknown run-config key") from None


def parse_value(name: str, text: str) -> Value:
    """A value given as text (``--set KEY=VALUE``), read as the key's type."""
    k = key(name)
    kind = k.kind
    if kind is bool:
        words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
        if text.strip().lower() not in words:
            raise ValueError(f"{name}: cannot read {text!r} as true or false")
        return k.check(words[text.strip().lower()])
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{name}: cannot read {text!r} as {kind.__name__}") from None
        return k.check(value)
    return k.check(text)


class RunConfig(Mapping[str, Value]):
    """A validated run config: every key present, typed, and consistent with the others.

    Unknown keys are an error; missing ones take their default.  Values read
    as attributes by their Python name (``cfg.learning_rate``) or as a
    mapping by their key (``cfg["learning-rate"]``).
    """

    def __init__(self, values: Mapping[str, object] | None = None, **overrides: object):
        merged: dict[str, object] = dict(DEFAULTS)
        for name, value in {**dict(values or {}), **{k.replace("_", "-"): v for k, v in overrides.items()}}.items():
            merged[name] = key(name).check(value)
        self._values: dict[str, Value] = merged  # type: ignore[assignment]
        check_rules(self)

    def __getattr__(self, attr: str) -> Value:
        k = _BY_ATTR.get(attr)
        if k is None:
            raise AttributeError(attr)
        return self._values[k.name]

    def __getitem__(self, name: str) -> Value:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # ------------------------------------------------------------ derived
    @property
    def local_bn(self) -> bool:
        """Whether BatchNorm layers stay on the node (FedBN, FedAP, FedHealth over either)."""
        return self.strategy in ("fedbn", "fedap") or (self.strategy == "fedhealth" and self.fedhealth_aggregation != "fedavg")

    @property
    def plain_mean(self) -> bool:
        """Whether a round has one example-weighted mean of whole updates (what DP and SecAgg+ wrap)."""
        return self.strategy in ("fedavg", "fedprox") or (self.strategy == "fedhealth" and self.fedhealth_aggregation == "fedavg")

    @property
    def attack_partition_list(self) -> tuple[int, ...]:
        from fedotl.client.attacks import parse_partitions

        return parse_partitions(str(self.attack_partitions))

    @property
    def server_subject_list(self) -> tuple[str, ...]:
        return parse_subjects(str(self.server_subjects))

    @property
    def holdout_subject_list(self) -> tuple[str, ...]:
        return parse_subjects(str(self.holdout_subjects))


def parse_subjects(text: str | None) -> tuple[str, ...]:
    """``"p1, p2"`` → ``("p1", "p2")``; empty → ().

    >>> parse_subjects(" p1, p2,")
    ('p1', 'p2')
    """
    if not text:
        return ()
    return tuple(s.strip() for s in str(text).split(",") if s.strip())


def strategy_words(c: RunConfig) -> str:
    """The strategy as an error names it (``fedhealth with fedbn aggregation``, ``fedap``)."""
    return f"fedhealth with {c.fedhealth_aggregation} aggregation" if c.strategy == "fedhealth" else str(c.strategy)


def check_rules(c: RunConfig) -> None:
    """The rules between keys (each key's own range is checked by :meth:`Key.check`)."""
    if not 0.0 < c.train_fraction < 1.0:  # type: ignore[operator]
        raise ValueError(f"train-fraction must be in (0, 1), got {c.train_fraction}")
    both = set(c.holdout_subject_list) & set(c.server_subject_list)
    if both:
        raise ValueError(f"subject(s) {sorted(both)} cannot be both server-held and held out as new users")
    if c.dp != "none":
        ok = c.plain_mean or (c.strategy == "fedbn" and c.dp == "client-fixed")
        if not ok:
            where = f" with {c.fedhealth_aggregation} aggregation" if c.strategy == "fedhealth" else ""
            raise ValueError(f"dp={c.dp} wraps one aggregate per round; it does not apply to {c.strategy}{where}")
    if c.secagg:
        if not c.plain_mean:
            raise ValueError(f"secagg sums whole-model updates into one weighted mean; it does not apply to {strategy_words(c)}")
        if c.dp == "server-fixed":
            raise ValueError("dp=server-fixed clips each update on the server, which secagg hides; use dp=client-fixed")
    if c.aggregation != "mean":
        if not c.plain_mean:
            raise ValueError(f"aggregation={c.aggregation} replaces the mean of whole updates; it does not apply to {strategy_words(c)}")
        if c.secagg:
            raise ValueError(f"aggregation={c.aggregation} needs each update; secagg reveals only their sum")
    if c.resume:
        if not c.plain_mean:
            raise ValueError(f"{strategy_words(c)} keeps per-node state that does not survive a run, so it cannot resume")
        if not c.out_dir:
            raise ValueError("resume needs out-dir, the run directory that holds the checkpoint")
    if c.attack != "none" and not c.attack_partition_list and not c.attackers > 0:  # type: ignore[operator]
        raise ValueError(f"attack={c.attack} needs attackers (a share of the devices) or attack-partitions")
