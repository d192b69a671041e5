"""A plain cross-subject baseline: scikit-learn on window features.

This is the reference point that transfer methods must beat: a standardised
logistic regression trained on every subject but one, tested on the held-out
subject (leave-one-subject-out).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fedotl.simulations.splits import leave_one_subject_out
from fedotl.simulations.windows import WindowSet


def make_classifier():
    """Standardised multinomial logistic regression (lbfgs: deterministic, so it takes no seed)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=1.0))


def loso_baseline(ws: WindowSet, features: np.ndarray | None = None, progress=None) -> dict[str, dict[str, float]]:
    """Per held-out subject: accuracy and macro-F1 of the logistic regression."""
    X = ws.features() if features is None else features
    out: dict[str, dict[str, float]] = {}
    folds = list(leave_one_subject_out(ws))
    for subject, tr, te in progress(folds) if progress else folds:
        clf = make_classifier().fit(X[tr], ws.y[tr])
        pred = clf.predict(X[te])
        out[subject] = {
            "accuracy": float(accuracy_score(ws.y[te], pred)),
            "macro_f1": float(f1_score(ws.y[te], pred, average="macro")),
            "n_test": int(len(te)),
        }
    return out
