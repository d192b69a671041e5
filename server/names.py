"""The vocabulary of the run config, importable without torch or Flower (the CLI needs it)."""

STRATEGIES = ("local", "central", "fedavg", "fedprox", "fedbn", "fedap", "fedhealth")
FEDHEALTH_AGGREGATIONS = ("fedavg", "fedbn", "fedap")
DP_MODES = ("none", "client-fixed", "server-fixed")
