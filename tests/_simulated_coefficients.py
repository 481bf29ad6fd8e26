"""SIMULATED coefficient files for the estimator tests (no real measurements here).

:func:`simulate` draws profiles of real registry architectures (weights, KV cache and
activations from :mod:`fitting.physics.memory` via :func:`fitting.overhead.specs.build_features`),
an overhead from *known* coefficients and a noise in the chosen error mode, fits the
coefficients by least squares in that error mode (scipy, independent of the package's NLS
engine), and assembles a document following docs/design.md "Coefficient file" and the
v2 schema: the error sits on the uncertain part ``U = y - (weights + workload KV)`` in log
units, with independent errors (no between-architecture component: ``between_rule`` "none").
Everything is labelled simulated (``observed_quantity.description``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from fitting.data.frameworks import framework_info
from fitting.overhead.specs import CUDA_GRAPH, build_features, get_spec
from fitting.data.registry import resolve_model

MODELS = ("Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-7B", "meta-llama/Llama-3.1-8B",
          "mistralai/Mistral-7B-v0.1", "Qwen/Qwen2.5-14B", "Qwen/Qwen2.5-32B", "meta-llama/Llama-3.1-70B")
TRUE_THETA = {
    "physical": np.array([0.45, 1.1, 0.25, 0.3, 1.0]),
    "seed": np.array([0.5, 0.03, 0.08, 0.004]),
    "boxcox": np.array([0.5, 0.03, 0.08, 0.004, 0.3]),
}
TRUE_CG = np.array([0.15, 0.004])
SHA = "0" * 64


@dataclass
class Simulated:
    """A simulated fit: the document plus the profiles it was fitted on."""

    doc: dict
    rows: list              # dict(model, tp, pp, batch_size, input_len, output_len) per profile
    fitted_gib: np.ndarray  # fitted values of the selected spec (the response)
    cg_fitted_gib: np.ndarray | None
    theta_true: np.ndarray


def _rows(rng, n, framework):
    heads_ok = framework in ("vllm", "sglang", "trtllm", "tgi")
    rows = []
    while len(rows) < n:
        model = MODELS[rng.integers(len(MODELS))]
        arch = resolve_model(model).architecture
        tp = int(rng.choice([1, 2, 4, 8]))
        if heads_ok and (arch.num_attention_heads % tp or (arch.num_kv_heads % tp and tp % arch.num_kv_heads)):
            continue
        rows.append({"model": model, "tp": tp, "pp": 1, "batch_size": int(rng.choice([1, 4, 16, 64, 128, 256])),
                     "input_len": int(rng.choice([128, 512, 2048])), "output_len": int(rng.choice([0, 128, 256]))})
    return rows


def _features(rows, framework):
    """Features of every row: one vectorised build_features call per model."""
    n = len(rows)
    out = {}
    models = [r["model"] for r in rows]
    for model in dict.fromkeys(models):
        idx = np.array([i for i, m in enumerate(models) if m == model])
        col = {k: np.array([rows[i][k] for i in idx]) for k in ("tp", "pp", "batch_size", "input_len", "output_len")}
        pairs = col["tp"] * 1000 + col["pp"]
        for key in np.unique(pairs):  # physics is fastest with scalar tp, pp and workload arrays
            sel = pairs == key
            f = build_features(resolve_model(model).architecture, framework=framework, tp=int(key // 1000),
                               pp=int(key % 1000), batch_size=col["batch_size"][sel],
                               input_len=col["input_len"][sel], output_len=col["output_len"][sel], dtype="bfloat16")
            for k, v in f.items():
                out.setdefault(k, np.empty(n))[idx[sel]] = np.broadcast_to(v, (int(sel.sum()),))
    return out


def _params_total(model):
    entry = resolve_model(model)
    if entry.params_total is not None:
        return float(entry.params_total)
    from fitting.physics.parameters import count_parameters

    return float(count_parameters(entry.architecture).total)


def _draw(spec, x, theta, s, rng):
    """A response with a log-normal error on the uncertain part only."""
    h = np.asarray(spec.uncertain_part(x, theta), float)
    return np.asarray(spec.exact_offset(x), float) + h * np.exp(s * rng.standard_normal(h.shape))


def _fit(spec, x, y, p0):
    """Least squares in ``mode``; a parameter whose Jacobian column is zero everywhere (e.g.
    kv_excess for a pool framework, whose workload KV is 0) is fixed at 0, its covariance
    row and column 0, as the refit does."""
    p0 = np.asarray(p0, float).copy()
    free = np.any(spec.jacobian(x, p0) != 0, axis=0)
    p0[~free] = 0.0

    def full(q):
        p = np.zeros(len(p0))
        p[free] = q
        return p

    u = y - np.asarray(spec.exact_offset(x), float)

    def h_of(p):
        return np.asarray(spec.uncertain_part(x, p), float)

    def f_of(p):
        return np.asarray(spec.predict_response(x, p), float)

    def resid(q):
        return np.log(u) - np.log(np.maximum(h_of(full(q)), 1e-300))

    def jac(q):
        p = full(q)
        return -spec.jacobian(x, p)[:, free] / h_of(p)[:, None]

    res = optimize.least_squares(resid, p0[free], jac=jac, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    r = resid(res.x)
    dof = len(y) - int(free.sum())
    s2 = float(r @ r / dof)
    J = jac(res.x)
    cov = np.zeros((len(p0), len(p0)))
    cov[np.ix_(free, free)] = s2 * np.linalg.inv(J.T @ J)
    theta = full(res.x)
    return theta, cov, math.sqrt(s2), dof, f_of(theta), float(r @ r)


def _spec_doc(spec, theta, cov, s, dof, nobs, rss, ranges, status="fitted"):
    se = np.sqrt(np.diag(cov))
    params = [{"name": ps.name, "unit": ps.unit, "estimate": float(t), "se": float(e) if status == "fitted" else None,
               "ci_lower": None, "ci_upper": None, "lower_bound": None, "upper_bound": None,
               "identified": status == "fitted", "description": ps.description}
              for ps, t, e in zip(spec.params, theta, se)]
    return {"name": spec.name, "formula": spec.formula, "description": spec.description, "response": spec.response,
            "error_mode": "log_uncertain_part", "status": status, "params": params, "covariance": cov.tolist(),
            "residual_scale": s, "df_resid": int(dof), "nobs": int(nobs), "rss": rss, "aic": None, "bic": None,
            "loglike": None, "data_ranges": ranges, "cv": None,
            "error_model": {"kind": "log_uncertain_part", "within_scale": s, "between_scale": None,
                            "between_rule": "none", "conservative_scale": None, "df": float(dof), "n_groups": 0,
                            "note": "SIMULATED: independent errors"}}


def simulate(framework="vllm", *, spec="physical", residual_scale=0.04, n=60, seed=0,
             cuda_graph=None, version=1, status="fitted") -> Simulated:
    """A SIMULATED coefficient document for ``framework`` fitted on ``n`` drawn profiles."""
    rng = np.random.default_rng(seed)
    sp = get_spec(spec)
    rows = _rows(rng, n, framework)
    x = _features(rows, framework)
    theta0 = TRUE_THETA[spec]
    y = _draw(sp, x, theta0, residual_scale, rng)
    theta, cov, s, dof, fitted, rss = _fit(sp, x, y, theta0 * 1.05)
    params_b = [_params_total(r["model"]) for r in rows]
    ranges = {"params_b": [min(params_b) / 1e9, max(params_b) / 1e9],
              "tp": [float(min(r["tp"] for r in rows)), float(max(r["tp"] for r in rows))],
              "batch_size": [float(min(r["batch_size"] for r in rows)), float(max(r["batch_size"] for r in rows))]}
    specs = {}
    if status == "fitted":
        specs[spec] = _spec_doc(sp, theta, cov, s, dof, n, rss, ranges)
        if spec != "seed":  # the schema wants seed among the specs of a fitted file
            seed_spec = get_spec("seed")
            th_s, cov_s, s_s, dof_s, _, rss_s = _fit(seed_spec, x, y, TRUE_THETA["seed"])
            specs["seed"] = _spec_doc(seed_spec, th_s, cov_s, s_s, dof_s, n, rss_s, ranges)
        selected = spec
        fallback = None
    else:  # unfitted: hand-set constants, wide interval
        seed_spec = get_spec("seed")
        theta = TRUE_THETA["seed"]
        specs["seed"] = _spec_doc(seed_spec, theta, np.zeros((4, 4)), 0.35, 5, 0, None, None, "unfitted")
        selected, fallback = "seed", {"source": "seed-plan constants", "text": "SIMULATED test constants",
                                      "residual_scale": 0.35, "df_resid": 5}
        fitted = np.asarray(seed_spec.predict_response(x, theta), float)
    cg_doc, cg_fitted = None, None
    if cuda_graph is None:
        cuda_graph = framework == "vllm" and status == "fitted"
    if cuda_graph:
        ycg = _draw(CUDA_GRAPH, x, TRUE_CG, 0.1, rng)
        th_c, cov_c, s_c, dof_c, cg_fitted, rss_c = _fit(CUDA_GRAPH, x, ycg, TRUE_CG * 1.1)
        cg_doc = _spec_doc(CUDA_GRAPH, th_c, cov_c, s_c, dof_c, n, rss_c, ranges)
    info = framework_info(framework)
    doc = {
        "schema_version": 2, "framework": framework, "version": version, "created": "2025-01-01T00:00:00Z",
        "package_version": "0.1.0", "input_sha256": SHA, "seed": seed, "status": status,
        "observed_quantity": {"name": info.observed_quantity,
                              "description": "SIMULATED test data drawn from known coefficients"},
        "kv_cache_mode": info.kv_cache_mode,
        "profiles": {"n_total": n, "n_used": n, "excluded": []},
        "selected_spec": selected, "specs": specs, "cuda_graph": cg_doc, "hypothesis": None, "fallback": fallback,
    }
    return Simulated(doc=doc, rows=rows, fitted_gib=fitted, cg_fitted_gib=cg_fitted, theta_true=theta0)


def write(sim_or_doc, directory):
    """Write a document into ``directory/<framework>/`` as ``vNNNN.json`` and ``latest.json``."""
    doc = sim_or_doc.doc if isinstance(sim_or_doc, Simulated) else sim_or_doc
    d = directory / doc["framework"]
    d.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1)
    (d / f"v{doc['version']:04d}.json").write_text(text)
    (d / "latest.json").write_text(text)
    return d
