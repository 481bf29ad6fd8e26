"""One fitted term of a coefficient file (an overhead spec or the CUDA-graph term) as a
predictive distribution, read strictly: estimates, covariance and the error model.

The distribution comes from the one prediction path, :func:`fitting.overhead.prediction.get_prediction`,
the same code that cross-validation and ``validate`` score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fitting.estimator.coefficient_file import CoefficientFileError, number_or
from fitting.overhead.prediction import ERROR_MODEL_KIND, ErrorModel, OverheadPrediction, get_prediction
from fitting.overhead.specs import get_spec
from fitting.stats.intervals import Predictive

__all__ = ["FittedTerm"]

#: Relative tolerance of the covariance checks (symmetry, smallest eigenvalue).
_COV_RTOL = 1e-8


def _check_scale(path, where, value, *, required):
    if value is None:
        if required:
            raise CoefficientFileError(path, where, "is null: a fitted term needs a residual scale for its intervals")
        return math.nan
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise CoefficientFileError(path, where, f"must be a finite number >= 0 (a standard deviation), got {value!r}")
    return v


def _check_cov(path, where, c):
    if not np.all(np.isfinite(c)):
        raise CoefficientFileError(path, where, "has non-finite entries")
    scale = max(float(np.max(np.abs(c))), 1e-300)
    if not np.allclose(c, c.T, rtol=_COV_RTOL, atol=_COV_RTOL * scale):
        raise CoefficientFileError(path, where, "is not symmetric")
    if c.size and float(np.min(np.linalg.eigvalsh((c + c.T) / 2))) < -_COV_RTOL * scale:
        raise CoefficientFileError(path, where, "is not positive semi-definite (a negative variance)")
    if np.any(np.diag(c) < 0):
        raise CoefficientFileError(path, where, "has a negative variance on its diagonal")


@dataclass(frozen=True)
class FittedTerm:
    """One fitted spec of a coefficient file: estimates, covariance and error model.

    :meth:`prediction` gives the :class:`fitting.overhead.prediction.OverheadPrediction` at a
    features dict of :func:`fitting.overhead.specs.build_features`, and :meth:`distribution`
    its predictive distribution (:class:`fitting.stats.intervals.Predictive`, log mode on the
    uncertain part, shifted by the exact part).
    """

    name: str
    spec: object
    theta: np.ndarray
    cov: np.ndarray
    error_model: ErrorModel
    status: str
    data_ranges: dict

    @property
    def residual_scale(self) -> float:
        """Within-architecture residual scale (log units)."""
        return self.error_model.within_scale

    @property
    def error_mode(self) -> str:
        return ERROR_MODEL_KIND

    @classmethod
    def from_doc(cls, name, d, path, where, fallback=None):
        spec_name = d.get("spec") or d.get("name") or name
        try:
            spec = get_spec(spec_name)
        except ValueError as exc:
            raise CoefficientFileError(path, where, str(exc)) from None
        by_name = {p["name"]: p for p in d.get("params", [])}
        missing = [n for n in spec.param_names if n not in by_name]
        if missing:
            raise CoefficientFileError(path, f"{where}.params", f"missing parameter(s) {missing} of spec {spec_name!r}")
        theta = np.array([number_or(by_name[n].get("estimate"), 0.0) for n in spec.param_names])
        k = len(theta)
        cov_doc = d.get("covariance")
        order = [p["name"] for p in d.get("params", [])]
        if cov_doc is None or len(cov_doc) == 0:
            cov = np.zeros((k, k))
        else:
            c = np.array([[number_or(v, math.nan) for v in row] for row in cov_doc], dtype=float)
            if c.shape != (len(order), len(order)):
                raise CoefficientFileError(path, f"{where}.covariance",
                                           f"shape {c.shape} does not match {len(order)} params")
            _check_cov(path, f"{where}.covariance", c)
            idx = [order.index(n) for n in spec.param_names]
            cov = c[np.ix_(idx, idx)]
        status = d.get("status", "fitted")
        fb = fallback or {}
        em = d.get("error_model") or {}
        fitted = status == "fitted"
        within = _check_scale(path, f"{where}.error_model.within_scale",
                              em.get("within_scale", d.get("residual_scale", fb.get("residual_scale"))),
                              required=fitted or bool(fb))
        between = em.get("between_scale")
        between = None if between is None else _check_scale(path, f"{where}.error_model.between_scale", between,
                                                            required=False)
        conservative = em.get("conservative_scale")
        conservative = None if conservative is None else _check_scale(
            path, f"{where}.error_model.conservative_scale", conservative, required=False)
        df = em.get("df", d.get("df_resid", fb.get("df_resid")))
        if df is None or not math.isfinite(float(df)) or float(df) < 1:
            if fitted or fb:
                raise CoefficientFileError(path, f"{where}.error_model.df",
                                           f"must be a number >= 1 (Student t degrees of freedom), got {df!r}")
            df = math.nan
        error_model = ErrorModel(within_scale=within, between_scale=between, df=float(df),
                                 n_groups=int(em.get("n_groups") or 0),
                                 between_rule=em.get("between_rule", "none" if not fitted else "estimated"),
                                 conservative_scale=conservative, note=str(em.get("note", "")))
        return cls(name=spec_name, spec=spec, theta=theta, cov=cov, error_model=error_model, status=status,
                   data_ranges=d.get("data_ranges") or {})

    def prediction(self, features) -> OverheadPrediction:
        """The one prediction path at ``features`` (GiB per GPU)."""
        return get_prediction(self.spec, self.theta, self.cov, self.error_model, features)

    def distribution(self, features) -> Predictive:
        """Predictive distribution of the response (GiB per GPU) at ``features``."""
        return self.prediction(features).predictive()
