"""Accuracy and coverage summaries of predictions against measurements (fractions, not %)."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy_metrics", "ape", "covered"]


def accuracy_metrics(ape, covered=None) -> dict:
    """MAPE, median and 90th-percentile APE and interval coverage of a set of predictions.

    Parameters
    ----------
    ape : array_like
        Absolute percentage errors (fractions); NaN entries (not predicted) are ignored.
    covered : array_like of bool or float, optional
        Whether each measurement lies inside its prediction interval (NaN: no interval).

    Returns
    -------
    dict
        ``n`` (finite APEs), ``mape``, ``median_ape``, ``p90_ape`` (linear interpolation),
        ``max_ape`` and ``coverage`` (None without intervals). Fractions.
    """
    a = np.asarray(ape, dtype=float)
    ok = np.isfinite(a)
    out = {"n": int(ok.sum()), "mape": None, "median_ape": None, "p90_ape": None, "max_ape": None,
           "coverage": None}
    if not ok.any():
        return out
    out.update(mape=float(np.mean(a[ok])), median_ape=float(np.median(a[ok])),
               p90_ape=float(np.percentile(a[ok], 90)), max_ape=float(np.max(a[ok])))
    if covered is not None:
        c = np.asarray(covered, dtype=float)[ok]
        c = c[np.isfinite(c)]
        out["coverage"] = float(np.mean(c)) if c.size else None
    return out


def ape(pred, y):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.asarray(pred, float) - y) / y


def covered(y, lo, hi):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    c = ((y >= lo) & (y <= hi)).astype(float)
    return np.where(np.isfinite(lo) & np.isfinite(hi), c, np.nan)
