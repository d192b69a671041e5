"""The vocabulary that the ServerApp and the ClientApp share: message types, record names, choices.

It lives here, in the lower layer, so that ``fedotl.server`` imports it and
``fedotl.client`` never imports the server.  Each wire name is written once:
every sender and every handler uses these constants.

>>> MSG_PERSONALIZE, REC_ARRAYS, REC_CLIENT
('train.personalize', 'arrays', 'client')
"""

from __future__ import annotations

# ------------------------------------------------------------ choices
STRATEGIES = ("local", "central", "fedavg", "fedprox", "fedbn", "fedap", "fedhealth")
FEDHEALTH_AGGREGATIONS = ("fedavg", "fedbn", "fedap")
DP_MODES = ("none", "client-fixed", "server-fixed")
MODELS = ("cnn", "mlp")
FAIL_MODES = ("raise", "hang")
AGGREGATIONS = ("mean", "median", "trimmed-mean", "krum", "multikrum", "bulyan")  # how a round combines the updates
ATTACKS = ("none", "sign-flip", "gaussian", "label-flip", "nan")  # simulated poisoning (fedotl.client.attacks)

# ------------------------------------------------------------ message types
# "train" and "evaluate" are Flower's own (@app.train(), @app.evaluate()).
MSG_PERSONALIZE = "train.personalize"  # FedHealth: frozen convs, FC fine-tuning with CORAL
MSG_STATS = "query.stats"  # bottleneck-feature moments, for FedHealth's source covariance
MSG_INFO = "query.info"  # input and class counts, so the server can build the model

# ------------------------------------------------------------ record names
REC_ARRAYS = "arrays"  # model weights, both ways
REC_CONFIG = "config"  # per-message settings (Flower's strategies use this name too)
REC_METRICS = "metrics"
REC_CLIENT = "client"  # who replied: client-id and partition-id
REC_FEDAP = "fedap"  # FedAP's BatchNorm statistics
REC_MOMENTS = "moments"  # Σf and Σffᵀ of the bottleneck features
REC_SOURCE = "source"  # FedHealth's source covariance, server → device
REC_DESCRIBE = "describe"  # what the node's windows are: classes, channels, rate, window
REC_HEAD = "head"  # a personalised head, device → server (only with share-heads)
REC_SUMMARY = "summary"  # a summary of the bottleneck features, device → server (only with share-heads)

# ------------------------------------------------------------ metric names
METRIC_CONFUSION = "confusion"  # a node's test confusion matrix, row-major (true class × predicted class)
METRIC_NON_FINITE = "non-finite"  # 1: the node's training step gave a non-finite loss or weight, and it sends no update

# ------------------------------------------------------------ message-config keys
# Only what changes per message travels in a message; the run config reaches
# every node through Flower's context.run_config and is never re-sent.
CFG_SERVER_ROUND = "server-round"  # set by Flower's strategies
CFG_PROXIMAL_MU = "proximal-mu"  # set by Flower's FedProx
CFG_BN_STATS = "bn-stats"  # FedAP asks for BatchNorm statistics this round
CFG_FEDAVG_ROUND = "fedavg-round"  # FedAP's pretraining: a plain FedAvg round, BatchNorm travels both ways
# personalisation metrics: mean CE and unweighted CORAL loss over the first and the last epoch
METRIC_PERSONALIZE_LOSSES = ("ce-start", "coral-start", "ce-end", "coral-end")
