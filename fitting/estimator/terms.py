"""One fitted term of a coefficient file (an overhead spec or the CUDA-graph term) as a
predictive distribution: estimates, covariance, residual scale and degrees of freedom."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fitting.estimator.coefficient_file import CoefficientFileError, number_or
from fitting.overhead.specs import get_spec
from fitting.stats.intervals import Predictive, predictive

__all__ = ["FittedTerm"]


@dataclass(frozen=True)
class FittedTerm:
    """One fitted spec of a coefficient file: estimates, covariance and error model.

    :meth:`distribution` gives the predictive distribution of the spec's response
    (:class:`fitting.stats.intervals.Predictive`) at a features dict of
    :func:`fitting.overhead.specs.build_features`.
    """

    name: str
    spec: object
    theta: np.ndarray
    cov: np.ndarray
    residual_scale: float
    df_resid: float
    error_mode: str
    status: str
    data_ranges: dict

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
            c = np.array([[number_or(v, 0.0) for v in row] for row in cov_doc], dtype=float)
            if c.shape != (len(order), len(order)):
                raise CoefficientFileError(path, f"{where}.covariance",
                                           f"shape {c.shape} does not match {len(order)} params")
            idx = [order.index(n) for n in spec.param_names]
            cov = c[np.ix_(idx, idx)]
        fb = fallback or {}
        scale = d.get("residual_scale", fb.get("residual_scale"))
        df = d.get("df_resid", fb.get("df_resid"))
        return cls(name=spec_name, spec=spec, theta=theta, cov=cov,
                   residual_scale=number_or(scale), df_resid=number_or(df, math.inf) if df else math.inf,
                   error_mode=d.get("error_mode", "log"), status=d.get("status", "fitted"),
                   data_ranges=d.get("data_ranges") or {})

    def distribution(self, features) -> Predictive:
        """Predictive distribution of the response (GiB per GPU) at ``features``."""
        f = np.asarray(self.spec.predict_response(features, self.theta), dtype=float)
        jac = np.asarray(self.spec.jacobian(features, self.theta), dtype=float)
        return predictive(f, jac.reshape(-1, len(self.theta)), self.cov, residual_scale=self.residual_scale,
                          df_resid=self.df_resid, error_mode=self.error_mode)


