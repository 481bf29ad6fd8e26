"""Accuracy and coverage summaries of predictions against measurements (fractions, not %)."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["accuracy_metrics", "ape", "covered", "coverage_band"]


def coverage_band(n: int, level: float = 0.90, conf: float = 0.95):
    """Central ``conf`` binomial acceptance band ``(lower, upper)`` of the observed coverage of
    ``n`` intervals at nominal ``level`` (fractions); None for n = 0. The coverage gate of
    ``validate`` and the dashboard: a binomial test, not a fixed tolerance."""
    if n <= 0:
        return None
    return float(stats.binom.ppf((1 - conf) / 2, n, level) / n), float(stats.binom.isf((1 - conf) / 2, n, level) / n)


def accuracy_metrics(ape, covered=None, level: float = 0.90) -> dict:
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
        ``max_ape`` and ``coverage`` (None without intervals), with ``coverage_band`` (the
        binomial 95 % band around ``level`` for that many intervals) and ``coverage_ok``.
        Fractions.
    """
    a = np.asarray(ape, dtype=float)
    ok = np.isfinite(a)
    out = {"n": int(ok.sum()), "mape": None, "median_ape": None, "p90_ape": None, "max_ape": None,
           "coverage": None, "coverage_band": None, "coverage_ok": None}
    if not ok.any():
        return out
    out.update(mape=float(np.mean(a[ok])), median_ape=float(np.median(a[ok])),
               p90_ape=float(np.percentile(a[ok], 90)), max_ape=float(np.max(a[ok])))
    if covered is not None:
        c = np.asarray(covered, dtype=float)[ok]
        c = c[np.isfinite(c)]
        out["coverage"] = float(np.mean(c)) if c.size else None
        band = coverage_band(int(c.size), level)
        out["coverage_band"] = list(band) if band else None
        out["coverage_ok"] = (bool(band[0] <= out["coverage"] <= band[1]) if band and out["coverage"] is not None
                              else None)
    return out


def ape(pred, y):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.asarray(pred, float) - y) / y


def covered(y, lo, hi):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    c = ((y >= lo) & (y <= hi)).astype(float)
    return np.where(np.isfinite(lo) & np.isfinite(hi), c, np.nan)
