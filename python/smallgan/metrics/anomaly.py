"""Anomaly-detection scores: AUPRC as MEG's reference code computes it, AP, AUROC.

The anomaly (the held-out digit) is the positive class and a higher score
means more anomalous.  :func:`auprc` is
``sklearn.metrics.auc(recall, precision)`` after
``sklearn.metrics.precision_recall_curve``: the trapezoidal area under the
PR curve, which is what Kumar et al. (2019) and Small-GAN's Table 2 report;
it is *not* average precision (:func:`average_precision`, the step-wise
sum), which we report beside it.

Example
-------
>>> round(auprc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 6)
0.791667
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

__all__ = ["auprc", "average_precision", "auroc", "pr_curve", "anomaly_scores"]


def _check(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same length, got {s.shape[0]} and {y.shape[0]}")
    if s.size == 0:
        raise ValueError("scores must not be empty")
    if not np.isfinite(s).all():
        raise ValueError(f"scores hold {int((~np.isfinite(s)).sum())} NaN or Inf values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (normal) or 1 (anomaly), got values {np.unique(y)[:5].tolist()}")
    y = y.astype(np.int64)
    if y.min() == y.max():
        raise ValueError("labels must contain both classes (0 = normal, 1 = anomaly)")
    return s, y


def pr_curve(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray]:
    """``(precision, recall)`` from ``sklearn.metrics.precision_recall_curve``.

    ``scores``, ``labels``: arrays of shape (n,); labels 1 = anomaly.
    """
    from sklearn.metrics import precision_recall_curve

    s, y = _check(scores, labels)
    precision, recall, _ = precision_recall_curve(y, s)
    return precision, recall


def auprc(scores: Any, labels: Any) -> float:
    """Trapezoidal area under the PR curve (MEG reference code), anomaly = positive."""
    from sklearn.metrics import auc

    precision, recall = pr_curve(scores, labels)
    return float(auc(recall, precision))


def average_precision(scores: Any, labels: Any) -> float:
    """``sklearn.metrics.average_precision_score`` (step-wise), anomaly = positive."""
    from sklearn.metrics import average_precision_score

    s, y = _check(scores, labels)
    return float(average_precision_score(y, s))


def auroc(scores: Any, labels: Any) -> float:
    """``sklearn.metrics.roc_auc_score``, anomaly = positive."""
    from sklearn.metrics import roc_auc_score

    s, y = _check(scores, labels)
    return float(roc_auc_score(y, s))


def anomaly_scores(scores: Any, labels: Any, prefix: str = "") -> Dict[str, float]:
    """``{prefix}auprc``, ``{prefix}ap`` and ``{prefix}auroc`` of one score."""
    return {f"{prefix}auprc": auprc(scores, labels),
            f"{prefix}ap": average_precision(scores, labels),
            f"{prefix}auroc": auroc(scores, labels)}
