"""What a prediction returns: the :class:`Prediction` of one configuration, the columns of the
vectorised output, and the table that turns predictive distributions into those figures.

GiB per GPU throughout (``total_all_gpus_*``: summed over tp x pp GPUs); intervals are
equal-tailed ``1 - alpha`` quantiles of the predictive distributions
(:mod:`fitting.stats.intervals`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from fitting.estimator.inputs import check_alpha, plain_settings
from fitting.stats.intervals import t_ppf

__all__ = ["Prediction", "OUTPUT_COLUMNS", "SUMMARY_COLUMNS", "component_table", "build_prediction"]

#: Columns of the vectorised output (besides the echoed inputs), GiB per GPU unless named.
OUTPUT_COLUMNS = (
    "weights_gib", "activations_gib", "overhead_gib", "overhead_lower_gib", "overhead_upper_gib",
    "non_kv_gib", "non_kv_lower_gib", "non_kv_upper_gib", "cuda_graph_gib", "cuda_graph_lower_gib",
    "cuda_graph_upper_gib", "kv_cache_gib", "kv_bytes_per_token", "total_gib", "total_lower_gib",
    "total_upper_gib", "n_gpus", "total_all_gpus_gib", "total_all_gpus_lower_gib",
    "total_all_gpus_upper_gib", "outside_fitted_range",
)


@dataclass
class Prediction:
    """One configuration's memory (GiB per GPU unless named) with ``1 - alpha`` intervals.

    ``to_dict()`` gives the JSON form that ``python -m fitting.estimate --json`` prints.
    """

    framework: str
    model: str
    params_version: int | None
    weights_gib: float
    activations_gib: float
    overhead_gib: float
    overhead_lower_gib: float
    overhead_upper_gib: float
    non_kv_gib: float
    non_kv_lower_gib: float
    non_kv_upper_gib: float
    cuda_graph_gib: float | None
    cuda_graph_lower_gib: float | None
    cuda_graph_upper_gib: float | None
    kv_cache_gib: float
    kv_bytes_per_token: float
    total_gib: float
    total_lower_gib: float
    total_upper_gib: float
    n_gpus: int
    total_all_gpus_gib: float
    total_all_gpus_lower_gib: float
    total_all_gpus_upper_gib: float
    alpha: float
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    defaults_applied: dict = field(default_factory=dict)
    params_file: str | None = None
    status: str = "fitted"
    spec: str = ""
    error_mode: str = "log"
    fit_probability: float | None = None
    #: the predictive distributions behind the figures (not part of :meth:`to_dict`)
    components: dict | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready: NaN becomes None)."""
        out = {}
        for f in fields(self):
            if f.name == "components":
                continue
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[f.name] = v
        return out



    def summary_frame(self, alpha: float | None = None):
        """Per-component estimates with mean and observation intervals, statsmodels-style.

        Parameters
        ----------
        alpha : float, optional
            ``1 - alpha`` intervals; default the prediction's own ``alpha``.

        Returns
        -------
        pandas.DataFrame
            Index ``overhead, non_kv, cuda_graph, total`` (GiB per GPU; ``cuda_graph`` only
            where the coefficient file has the term), columns ``mean, mean_se,
            mean_ci_lower, mean_ci_upper, obs_ci_lower, obs_ci_upper`` as
            :meth:`statsmodels.regression._prediction.PredictionResults.summary_frame`
            names them. ``mean`` is the fitted value (the median of the predictive
            distribution), ``mean_se`` its delta-method standard error, ``mean_ci_*`` the
            interval of the fitted value (parameter uncertainty only) and ``obs_ci_*`` the
            prediction interval of a new measurement. The total's ``mean_ci_*`` adds the
            fitted terms' standard errors in quadrature (they are independent fits).
        """
        import pandas as pd  # lazy: pandas adds ~0.4 s to a cold start; only this table needs it

        if self.components is None:
            raise ValueError("this Prediction carries no distributions (built from arrays); use Estimator.predict")
        alpha = self.alpha if alpha is None else float(alpha)
        check_alpha(alpha)
        c = self.components
        rows = {}
        offset = float(np.asarray(c["non_kv"].median)) - float(np.asarray(c["overhead"]))
        y_row = _term_row(c["y"], alpha)
        shift_y = float(np.asarray(c["non_kv"].median)) - y_row["mean"]
        nk = {k: v + shift_y if k != "mean_se" else v for k, v in y_row.items()}
        rows["overhead"] = {k: v - offset if k != "mean_se" else v for k, v in nk.items()}
        rows["non_kv"] = nk
        se2 = nk["mean_se"] ** 2
        if c["cg"] is not None:
            rows["cuda_graph"] = _term_row(c["cg"], alpha)
            se2 += rows["cuda_graph"]["mean_se"] ** 2
        total = c["total"]
        t_mean = float(np.asarray(total.median))
        t_se = math.sqrt(se2)
        q = float(t_ppf(1.0 - alpha / 2.0, total.df))
        rows["total"] = {"mean": t_mean, "mean_se": t_se, "mean_ci_lower": t_mean - q * t_se,
                         "mean_ci_upper": t_mean + q * t_se,
                         "obs_ci_lower": float(np.asarray(total.quantile(alpha / 2.0))),
                         "obs_ci_upper": float(np.asarray(total.quantile(1.0 - alpha / 2.0)))}
        frame = pd.DataFrame.from_dict(rows, orient="index")[list(SUMMARY_COLUMNS)]
        frame.attrs.update({"units": "GiB per GPU", "alpha": alpha})
        return frame


#: Columns of :meth:`Prediction.summary_frame` (statsmodels' names).
SUMMARY_COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper")


def _term_row(dist, alpha) -> dict:
    """summary_frame row of one fitted term's predictive distribution (scalar)."""
    f = float(np.asarray(dist.median))
    center = float(np.asarray(dist.center))
    rse = math.nan if dist.mean_rse is None else float(np.asarray(dist.mean_rse))
    q = float(t_ppf(1.0 - alpha / 2.0, dist.df))
    se = abs(center) * rse  # mean_rse is the relative SE of the fitted value in every error mode
    if dist.error_mode == "log":
        lo, hi = center * math.exp(-q * rse), center * math.exp(q * rse)
    else:
        lo, hi = center - q * se, center + q * se
    shift = f - center
    return {"mean": f, "mean_se": se, "mean_ci_lower": shift + lo, "mean_ci_upper": shift + hi,
            "obs_ci_lower": float(np.asarray(dist.quantile(alpha / 2.0))),
            "obs_ci_upper": float(np.asarray(dist.quantile(1.0 - alpha / 2.0)))}


def component_table(c, alpha, n_gpus) -> dict:
    """Output arrays (the :data:`OUTPUT_COLUMNS` but ``outside_fitted_range``) of a components dict."""
    lo, hi = alpha / 2.0, 1.0 - alpha / 2.0
    nk_lo, nk_hi = c["non_kv"].quantile(lo), c["non_kv"].quantile(hi)
    offset = c["non_kv"].median - c["overhead"]
    tot_lo, tot_hi = c["total"].quantile(lo), c["total"].quantile(hi)
    out = {
        "weights_gib": c["features"]["weights_gib"],
        "activations_gib": c["features"]["activations_gib"],
        "overhead_gib": c["overhead"],
        "overhead_lower_gib": nk_lo - offset,
        "overhead_upper_gib": nk_hi - offset,
        "non_kv_gib": c["non_kv"].median,
        "non_kv_lower_gib": nk_lo,
        "non_kv_upper_gib": nk_hi,
        "kv_cache_gib": c["kv"],
        "kv_bytes_per_token": c["kvbpt"],
        "total_gib": c["total"].median,
        "total_lower_gib": tot_lo,
        "total_upper_gib": tot_hi,
        "n_gpus": n_gpus,
    }
    if c["cg"] is not None:
        out["cuda_graph_gib"] = c["cg"].median
        out["cuda_graph_lower_gib"] = c["cg"].quantile(lo)
        out["cuda_graph_upper_gib"] = c["cg"].quantile(hi)
    else:
        nan = np.full(np.shape(c["kv"]), np.nan)
        out["cuda_graph_gib"] = out["cuda_graph_lower_gib"] = out["cuda_graph_upper_gib"] = nan
    out["total_all_gpus_gib"] = out["total_gib"] * n_gpus
    out["total_all_gpus_lower_gib"] = tot_lo * n_gpus
    out["total_all_gpus_upper_gib"] = tot_hi * n_gpus
    return out


def build_prediction(est, name, out, alpha, msgs, s, applied, components=None) -> Prediction:
    """The :class:`Prediction` of one configuration from :func:`component_table` arrays."""
    def sc(v):
        return float(np.asarray(v).reshape(-1)[0])

    have_cg = est.cuda_graph is not None
    return Prediction(
        framework=est.framework, model=name, params_version=est.version,
        weights_gib=sc(out["weights_gib"]), activations_gib=sc(out["activations_gib"]),
        overhead_gib=sc(out["overhead_gib"]), overhead_lower_gib=sc(out["overhead_lower_gib"]),
        overhead_upper_gib=sc(out["overhead_upper_gib"]), non_kv_gib=sc(out["non_kv_gib"]),
        non_kv_lower_gib=sc(out["non_kv_lower_gib"]), non_kv_upper_gib=sc(out["non_kv_upper_gib"]),
        cuda_graph_gib=sc(out["cuda_graph_gib"]) if have_cg else None,
        cuda_graph_lower_gib=sc(out["cuda_graph_lower_gib"]) if have_cg else None,
        cuda_graph_upper_gib=sc(out["cuda_graph_upper_gib"]) if have_cg else None,
        kv_cache_gib=sc(out["kv_cache_gib"]), kv_bytes_per_token=sc(out["kv_bytes_per_token"]),
        total_gib=sc(out["total_gib"]), total_lower_gib=sc(out["total_lower_gib"]),
        total_upper_gib=sc(out["total_upper_gib"]), n_gpus=int(sc(out["n_gpus"])),
        total_all_gpus_gib=sc(out["total_all_gpus_gib"]),
        total_all_gpus_lower_gib=sc(out["total_all_gpus_lower_gib"]),
        total_all_gpus_upper_gib=sc(out["total_all_gpus_upper_gib"]),
        alpha=float(alpha), warnings=list(msgs), settings=plain_settings(s), defaults_applied=dict(applied),
        params_file=est.path, status=est.status, spec=est.term.name, error_mode=est.term.error_mode,
        fit_probability=sc(out["fit_probability"]) if "fit_probability" in out else None,
        components=components)
