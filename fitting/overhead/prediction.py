r"""The one prediction path: a fitted spec's response at new configurations, with intervals.

Used by the estimator, cross-validation, ``validate``, the reports and the dashboard alike,
so that the coverage we measure is the coverage users get. numpy only (the estimator
imports it).

Error model (``kind = "log_uncertain_part"``). The response splits into an exact part
``E`` (weights and the workload KV cache: :func:`fitting.overhead.specs.exact_offset_gib`,
no error) and an uncertain part ``U = h(\theta; x)`` (first-order activations + fitted
overhead, or a whole term such as vLLM's CUDA graphs), and

.. math::

    y = E + U, \qquad \log U = \log h(\hat\theta; x) + \eta_{a} + \varepsilon,
    \qquad \eta_a \sim N(0, \tau^2), \; \varepsilon \sim N(0, \sigma^2)

with ``a`` the architecture (one draw per architecture: runs of one model share it). For a
new architecture the predictive variance on the log scale is
:math:`\log(1 + g^T C g) + \tau^2 + \sigma^2` (``g`` the gradient of :math:`\log h`, ``C`` the
parameter covariance), Student t on ``df`` = architectures - parameters. The interval of the
total is ``E`` + the interval of ``U``: it never reaches below the exact weights, and the
overhead's interval goes negative only through a documented negative term (the activation
correction ``activation_excess < 0``).

Where the between-model variance is not estimable (fewer than three architectures) the
conservative rule replaces :math:`\tau^2` by the residual variance of an independent-errors
fit, which contains the between-model spread, on top of :math:`\sigma^2`
(``between_model_rule = "conservative"``), never the within-model scale alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fitting.stats.intervals import Predictive, delta_variance, t_ppf

__all__ = ["ErrorModel", "OverheadPrediction", "get_prediction", "ERROR_MODEL_KIND", "SUMMARY_COLUMNS"]

ERROR_MODEL_KIND = "log_uncertain_part"
#: statsmodels' columns of ``summary_frame``.
SUMMARY_COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper")


@dataclass(frozen=True)
class ErrorModel:
    """The error model of one fitted spec (log units).

    Attributes
    ----------
    within_scale : float
        ``sigma``: run-to-run standard deviation within an architecture.
    between_scale : float or None
        ``tau``: standard deviation of the architecture effect; None = not estimable.
    df : float
        Degrees of freedom of the Student t (architectures - parameters).
    n_groups : int
        Architectures in the fit.
    between_rule : str
        ``"estimated"`` (REML), ``"conservative"`` (not estimable: ``conservative_scale``
        is used in its place) or ``"none"`` (fitted without groups).
    conservative_scale : float or None
        The stand-in for ``tau`` under the conservative rule.
    note : str
    """

    within_scale: float
    between_scale: float | None
    df: float
    n_groups: int = 0
    between_rule: str = "estimated"
    conservative_scale: float | None = None
    note: str = ""

    @property
    def between_variance(self) -> float:
        """The between-model variance a new architecture's interval uses (log units^2)."""
        if self.between_rule == "conservative":
            return float(self.conservative_scale or 0.0) ** 2
        return float(self.between_scale or 0.0) ** 2

    @property
    def observation_variance(self) -> float:
        """``tau^2 + sigma^2`` for a new architecture (log units^2)."""
        return self.between_variance + float(self.within_scale) ** 2


class OverheadPrediction:
    r"""A spec's response at new configurations (GiB per GPU), statsmodels-style.

    Attributes
    ----------
    offset : ndarray
        The exact part ``E``.
    center : ndarray
        ``h``, the fitted uncertain part (median of ``U``).
    var_mean : ndarray
        Relative variance of the fitted uncertain part, :math:`g^T C g` with ``g`` the gradient
        of ``log h`` (delta method; parameter uncertainty only). On the log scale it enters
        moment-matched as :math:`\log(1 + g^T C g)`, which stays sensible where the
        relative error of ``h`` is large (a term extrapolated far below its data).
    error_model : ErrorModel
    """

    def __init__(self, offset, center, var_mean, error_model: ErrorModel):
        self.offset = np.asarray(offset, dtype=float)
        self.center = np.asarray(center, dtype=float)
        self.var_mean = np.asarray(var_mean, dtype=float)
        self.error_model = error_model

    @property
    def predicted(self) -> np.ndarray:
        """Fitted response ``E + h`` (GiB per GPU): the median of the predictive distribution."""
        return self.offset + self.center

    def _t(self, alpha):
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
        return float(t_ppf(1.0 - alpha / 2.0, self.error_model.df))

    @property
    def var_log_mean(self) -> np.ndarray:
        r"""Variance of ``log h`` from parameter uncertainty, :math:`\log(1 + g^T C g)`."""
        return np.log1p(self.var_mean)

    def conf_int(self, alpha: float = 0.10, *, obs: bool = True):
        """``(lower, upper)`` of the response: a prediction interval for a new architecture's
        measurement (``obs=True``) or the interval of the fitted value (``obs=False``)."""
        t = self._t(alpha)
        var = self.var_log_mean + (self.error_model.observation_variance if obs else 0.0)
        half = t * np.sqrt(var)
        with np.errstate(over="ignore"):
            return self.offset + self.center * np.exp(-half), self.offset + self.center * np.exp(half)

    def summary_frame(self, alpha: float = 0.10):
        """DataFrame with ``mean, mean_se, mean_ci_lower, mean_ci_upper, obs_ci_lower,
        obs_ci_upper`` (GiB per GPU), as :meth:`statsmodels.regression._prediction.
        PredictionResults.summary_frame` names them. ``mean_se`` is the delta-method
        standard error of the fitted response, ``h sqrt(var_mean)``."""
        import pandas as pd  # lazy: pandas costs ~0.2 s at import; the estimator's scalar path avoids it

        lo, hi = self.conf_int(alpha, obs=False)
        olo, ohi = self.conf_int(alpha, obs=True)
        return pd.DataFrame({"mean": self.predicted, "mean_se": self.center * np.sqrt(self.var_mean),
                             "mean_ci_lower": lo, "mean_ci_upper": hi, "obs_ci_lower": olo, "obs_ci_upper": ohi})

    def predictive(self) -> Predictive:
        """The predictive distribution of the response as a :class:`fitting.stats.intervals.Predictive`
        (log mode on ``U``, shifted by ``E``): what the estimator's queries evaluate."""
        scale = np.sqrt(self.var_log_mean + self.error_model.observation_variance)
        return Predictive(self.center, scale, float(self.error_model.df), "log", self.offset,
                          np.sqrt(self.var_mean))


def get_prediction(spec, theta, cov, error_model: ErrorModel, features, *, identified=None) -> OverheadPrediction:
    """The fitted ``spec`` at ``features`` with its error model: the one prediction path.

    Parameters
    ----------
    spec : fitting.overhead.specs.OverheadSpec
    theta : ndarray
        Estimates, spec order.
    cov : ndarray
        Their covariance (zeros for fixed / unidentified parameters).
    error_model : ErrorModel
    features : dict of ndarray
        :func:`fitting.overhead.specs.build_features` output.
    identified : ndarray of bool, optional
        Parameters whose covariance is used (default: all).

    Returns
    -------
    OverheadPrediction
    """
    theta = np.asarray(theta, dtype=float)
    h = np.asarray(spec.uncertain_part(features, theta), dtype=float)
    offset = np.broadcast_to(np.asarray(spec.exact_offset(features), dtype=float), h.shape)
    jac = np.asarray(spec.jacobian(features, theta), dtype=float).reshape(-1, theta.size)
    cov = np.asarray(cov, dtype=float)
    if identified is not None:
        keep = np.asarray(identified, dtype=bool)
        jac, cov = jac[:, keep], cov[np.ix_(keep, keep)]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = jac / np.maximum(h.reshape(-1), 1e-300)[:, None]
    var_mean = (delta_variance(g, cov) if g.size else np.zeros(h.size)).reshape(h.shape)
    if not math.isfinite(error_model.within_scale):
        var_mean = np.full(h.shape, math.nan)
    return OverheadPrediction(offset, h, var_mean, error_model)
