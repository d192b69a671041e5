"""Online transfer learning on streams: PA family, OTL (HomOTL-I/II, HetOTL), HomOTLMS,
HomOTL-ODDM, baselines, online target standardisation, a batched multi-device engine and
prequential evaluation.

Every learner is a :class:`river.base.Classifier` (``learn_one`` / ``predict_one`` /
``predict_proba_one`` on dict features) over a numpy array path (``learn_array``,
``predict_array``, ``predict_learn_array``, ``partial_fit``, ``prequential``).
This package depends only on numpy, scipy and river (torch only inside
:func:`fedotl.online.sources.from_torch`).  See docs/online.md.
"""

from .baselines import PAIO, FixedAlphaHomOTL, Persistence, SourceOnly
from .batched import BatchedHomOTLMS, BatchedPA
from .evaluation import (
    CurveStats,
    evaluate,
    evaluate_learner,
    persistence_mistakes,
    prequential,
    results_to_dict,
)
from .hetotl import HetOTL, MulticlassHetOTL
from .homotl1 import HomOTL1, MulticlassHomOTL1
from .homotl2 import HomOTL2, MulticlassHomOTL2
from .homotlms import HomOTLMS
from .jda import JDAResult, jda
from .kernels import margin_pi
from .oddm import HomOTLODDM, ProjectedSource
from .pa import PA, MulticlassPA
from .sources import (
    SourceClassifier,
    from_pa,
    from_sklearn,
    from_torch,
    train_averaged_pa,
)
from .standardized import TargetStandardized

__all__ = [
    "PA",
    "PAIO",
    "BatchedHomOTLMS",
    "BatchedPA",
    "CurveStats",
    "FixedAlphaHomOTL",
    "HetOTL",
    "HomOTL1",
    "HomOTL2",
    "HomOTLMS",
    "HomOTLODDM",
    "JDAResult",
    "MulticlassHetOTL",
    "MulticlassHomOTL1",
    "MulticlassHomOTL2",
    "MulticlassPA",
    "Persistence",
    "ProjectedSource",
    "SourceClassifier",
    "SourceOnly",
    "TargetStandardized",
    "evaluate",
    "evaluate_learner",
    "from_pa",
    "from_sklearn",
    "from_torch",
    "jda",
    "margin_pi",
    "persistence_mistakes",
    "prequential",
    "results_to_dict",
    "train_averaged_pa",
]
