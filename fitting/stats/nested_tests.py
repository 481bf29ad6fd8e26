"""Nested-model tests of two fits of the same data: extra-sum-of-squares F and likelihood ratio.

The fits are :class:`fitting.stats.nls.NLSResults` (or anything with ``nobs, y, weights,
error_mode, df_resid, rss, loglike, converged, loss``); nothing here knows about LLMs.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

from fitting.stats.nls_core import NLSWarning

__all__ = ["FTestResult", "LRTestResult", "f_test", "lr_test"]


# ------------------------------------------------------------------ nested-model tests
class FTestResult(NamedTuple):
    """Extra-sum-of-squares F test: statistic, numerator and denominator df, p-value."""

    statistic: float
    df_num: int
    df_denom: int
    pvalue: float


class LRTestResult(NamedTuple):
    """Likelihood-ratio test: statistic ``2 (llf_full - llf_restricted)``, df, p-value."""

    statistic: float
    df: int
    pvalue: float


def _nesting_warnings(restricted, full) -> int:
    problems = []
    if restricted.nobs != full.nobs:
        problems.append(f"different nobs ({restricted.nobs} vs {full.nobs})")
    elif not np.array_equal(restricted.y, full.y):
        problems.append("different responses y")
    if restricted.error_mode != full.error_mode:
        problems.append(f"different error modes ({restricted.error_mode} vs {full.error_mode})")
    if (restricted.weights is None) != (full.weights is None) or (
        restricted.weights is not None and not np.array_equal(restricted.weights, full.weights)
    ):
        problems.append("different weights")
    df_diff = restricted.df_resid - full.df_resid
    if df_diff <= 0:
        problems.append(f"restricted model is not smaller (df_resid {restricted.df_resid} vs {full.df_resid})")
    if restricted.rss < full.rss * (1 - 1e-10):
        problems.append("restricted RSS below full RSS (not nested, or a fit failed)")
    for r, label in ((restricted, "restricted"), (full, "full")):
        if not r.converged:
            problems.append(f"{label} fit did not converge")
        if r.loss != "linear":
            problems.append(f"{label} fit uses a robust loss")
    for p in problems:
        warnings.warn(f"nested-model test: {p}", NLSWarning, stacklevel=3)
    return df_diff


def f_test(restricted, full) -> FTestResult:
    """Extra-sum-of-squares F test of a restricted model nested in ``full``.

    Notes
    -----
    .. math:: F = \\frac{(\\mathrm{RSS}_r - \\mathrm{RSS}_f) / (\\nu_r - \\nu_f)}
              {\\mathrm{RSS}_f / \\nu_f} \\sim F(\\nu_r - \\nu_f, \\nu_f)

    with :math:`\\nu` = ``df_resid``; exact for linear models, approximate otherwise.
    Warns (:class:`NLSWarning`) when the fits differ in data, weights or error mode,
    are not smaller/larger, did not converge or used a robust loss.
    """
    df_num = _nesting_warnings(restricted, full)
    df_den = full.df_resid
    if df_num <= 0 or df_den <= 0:
        return FTestResult(math.nan, int(df_num), int(df_den), math.nan)
    stat = ((restricted.rss - full.rss) / df_num) / (full.rss / df_den)
    return FTestResult(float(stat), int(df_num), int(df_den), float(stats.f.sf(stat, df_num, df_den)))


def lr_test(restricted, full) -> LRTestResult:
    """Likelihood-ratio test of a restricted model nested in ``full``.

    Notes
    -----
    :math:`LR = 2(\\ell_f - \\ell_r) \\sim \\chi^2(k_f - k_r)` with the profile
    log-likelihoods ``loglike`` (sigma profiled out in both, so it does not enter the
    df) and ``k`` the estimated parameters, ``k_f - k_r = df_resid_r - df_resid_f``.
    Warns like :func:`f_test`.
    """
    df = _nesting_warnings(restricted, full)
    if df <= 0:
        return LRTestResult(math.nan, int(df), math.nan)
    stat = 2.0 * (full.loglike - restricted.loglike)
    return LRTestResult(float(stat), int(df), float(stats.chi2.sf(stat, df)))
