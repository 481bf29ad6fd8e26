"""Bootstrap for :class:`fitting.stats.nls.NLSResults`: case, residual and group resampling.

Every replicate refits the model with the original settings (error mode, loss, weights,
tolerances), starting from the original estimates. Replicates whose solver fails are
dropped and counted (``n_failed``). Intervals are percentile intervals.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fitting.stats.nls_core import NLSWarning, response_from_working

KINDS = ("case", "residual", "group")


def take_rows(x, idx, n):
    """Rows ``idx`` of predictors ``x`` with ``n`` observations.

    Works for an ndarray (rows = axis 0), a pandas DataFrame/Series (by position, index
    reset) and a mapping of arrays (entries whose first axis has length ``n`` are
    subset; scalars and other entries are kept as they are).
    """
    idx = np.asarray(idx, dtype=int)
    if isinstance(x, (pd.DataFrame, pd.Series)):
        return x.iloc[idx].reset_index(drop=True)
    if isinstance(x, Mapping):
        out = {}
        for key, value in x.items():
            arr = value if isinstance(value, (np.ndarray, pd.Series)) else None
            if arr is None and isinstance(value, (list, tuple)) and len(value) == n:
                arr = np.asarray(value)
            if arr is not None and arr.ndim >= 1 and arr.shape[0] == n:
                out[key] = arr.iloc[idx].to_numpy() if isinstance(arr, pd.Series) else arr[idx]
            else:
                out[key] = value
        return type(x)(out) if isinstance(x, dict) else out
    arr = np.asarray(x)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"cannot subset x of shape {arr.shape} by rows: expected first axis of length {n}")
    return arr[idx]


@dataclass
class BootstrapResults:
    """Replicate estimates of a bootstrap.

    Attributes
    ----------
    kind : str
        ``case``, ``residual`` or ``group``.
    seed : int
    params : pandas.DataFrame
        One row per successful replicate, one column per parameter (parameter units).
    predictions : pandas.DataFrame or None
        Replicate model values at ``x_new`` (one column per new point), if requested.
    estimate : pandas.Series
        The original estimates.
    prediction_estimate : numpy.ndarray or None
        The original fit's values at ``x_new``.
    n_boot, n_failed : int
        Requested replicates and those dropped because the refit failed.
    """

    kind: str
    seed: int
    params: pd.DataFrame
    predictions: pd.DataFrame | None
    estimate: pd.Series
    prediction_estimate: np.ndarray | None
    n_boot: int
    n_failed: int

    @property
    def bse(self) -> pd.Series:
        """Bootstrap standard deviation of each parameter (parameter units)."""
        return self.params.std(ddof=1)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Percentile ``1 - alpha`` intervals, columns ``lower``, ``upper``."""
        lo, hi = np.nanquantile(self.params.to_numpy(), [alpha / 2, 1 - alpha / 2], axis=0)
        return pd.DataFrame({"lower": lo, "upper": hi}, index=self.params.columns)

    def prediction_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """``mean`` (original fit), ``mean_se`` (bootstrap sd), and percentile
        ``mean_ci_lower``/``mean_ci_upper`` of the model value at ``x_new``."""
        if self.predictions is None:
            raise ValueError("no predictions: pass x_new to bootstrap()")
        arr = self.predictions.to_numpy()
        lo, hi = np.nanquantile(arr, [alpha / 2, 1 - alpha / 2], axis=0)
        return pd.DataFrame({"mean": self.prediction_estimate, "mean_se": arr.std(axis=0, ddof=1),
                             "mean_ci_lower": lo, "mean_ci_upper": hi})


def _group_rows(groups, n):
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise ValueError(f"groups must have one label per observation ({n}), got shape {labels.shape}")
    codes, _ = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def run_bootstrap(results, *, n_boot=1000, kind="case", groups=None, seed=0, progress=None, x_new=None):
    """Run the bootstrap described in :meth:`fitting.stats.nls.NLSResults.bootstrap`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n = results.nobs
    rng = np.random.default_rng(seed)
    p_hat = results.params.to_numpy()
    weights = results.weights
    sqrt_w = None if weights is None else np.sqrt(weights)
    if kind == "group":
        if groups is None:
            raise ValueError("kind='group' needs groups (one label per observation)")
        members = _group_rows(groups, n)
        if len(members) < 2:
            raise ValueError("kind='group' needs at least two groups")
    elif kind == "residual":
        if results.df_resid <= 0:
            raise ValueError("residual bootstrap needs df_resid > 0")
        r = results.wresid
        centred = (r - r.mean()) * math.sqrt(n / results.df_resid)
    if progress is None:
        progress = n_boot >= 200 and sys.stderr.isatty()
    reps, preds, failed = [], [], 0
    for _ in tqdm(range(int(n_boot)), disable=not progress, desc=f"bootstrap ({kind})", leave=False):
        if kind == "residual":
            r_star = centred[rng.integers(0, n, n)]
            x_b, w_b = results.x, weights
            y_b = response_from_working(results.fittedvalues, r_star, sqrt_w, results.error_mode)
        else:
            if kind == "case":
                idx = rng.integers(0, n, n)
            else:
                pick = rng.integers(0, len(members), len(members))
                idx = np.concatenate([members[g] for g in pick])
            x_b, y_b = take_rows(results.x, idx, n), results.y[idx]
            w_b = None if weights is None else weights[idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_b = results._refit(x_b, y_b, w_b, p_hat)
            if p_b is not None and x_new is not None:
                pred = np.asarray(results.model.func(x_new, p_b), dtype=float)
        if p_b is None:
            failed += 1
            continue
        reps.append(p_b)
        if x_new is not None:
            preds.append(pred)
    if failed:
        warnings.warn(f"bootstrap: {failed} of {n_boot} replicate fits failed and were dropped",
                      NLSWarning, stacklevel=3)
    names = results.model.param_names
    params = pd.DataFrame(np.array(reps).reshape(-1, len(names)), columns=names)
    predictions = pred_est = None
    if x_new is not None:
        pred_est = results.predict(x_new)
        predictions = pd.DataFrame(np.array(preds).reshape(-1, pred_est.size))
    return BootstrapResults(kind, seed, params, predictions, results.params, pred_est, int(n_boot), failed)
