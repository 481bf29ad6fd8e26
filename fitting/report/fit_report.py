"""Markdown + PNG report of one framework's refit (``reports/<framework>.md``).

The only module that imports matplotlib, lazily and with the Agg backend. Plot functions
take ``ax=None`` and return the axes; nothing is shown. Sections: status and data,
spec selection, coefficient tables with 95 % intervals, predicted vs measured, residuals
against model size and batch size with the fitted batch curve, leave-one-architecture-out
accuracy by size class against the seed plan's targets, the log-scaling verdict, flagged
outliers, excluded and skipped profiles, and the change from the previous version (the
coefficients that moved by more than their standard error).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fitting.atomic_io import atomic_path, atomic_write_text
from fitting.overhead.specs import SEED, boxcox_batch, get_spec

__all__ = ["write_report", "render_markdown", "plot_predicted_vs_measured", "plot_residuals_vs_size",
           "plot_batch_curve", "coefficient_changes"]


def _plt():
    import matplotlib  # lazy: ~0.3 s at import; only the PNG figures need it

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # lazy: see above

    return plt


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


# ------------------------------------------------------------------------------- plots
def _plain_log_ticks(axis):
    """Plain numbers (3, 10, 30) instead of 3x10^0 on a log axis."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter  # lazy: see _plt

    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(NullFormatter())


def _selected(fw_fit):
    name = fw_fit.selected_spec
    return get_spec(name), fw_fit.specs[name]


def plot_predicted_vs_measured(fw_fit, ax=None):
    """Fitted (selected spec) and leave-one-architecture-out predictions against measured (GiB)."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 5))[1]
    obs = fw_fit.observations
    spec, fit = _selected(fw_fit)
    y = obs.y
    ax.scatter(y, spec.predict_response(obs.features, fit.estimate), s=14, label="in-sample fit")
    preds = ((fit.cv or {}).get("predictions") or {}).get("pred_gib")
    if preds is not None:
        ax.scatter(y, preds, s=14, marker="x", label="held-out model (CV)")
    lo, hi = float(np.min(y)) * 0.8, float(np.max(y)) * 1.25
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel(f"measured {obs.observed_quantity['name']} (GiB per GPU)")
    ax.set_ylabel("predicted (GiB per GPU)")
    ax.set_title(f"{fw_fit.framework}: {fw_fit.selected_spec}")
    ax.legend(fontsize=8)
    return ax


def plot_residuals_vs_size(fw_fit, ax=None):
    """Log residuals of the selected spec against model size (billions of parameters)."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    obs = fw_fit.observations
    spec, fit = _selected(fw_fit)
    r = np.log(obs.y) - np.log(spec.predict_response(obs.features, fit.estimate))
    ax.scatter(obs.table["params_b"].to_numpy(dtype=float), r, s=14)
    ax.axhline(0.0, color="k", lw=1)
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("model size (billion parameters)")
    ax.set_ylabel("log(measured / predicted)")
    ax.set_title(f"{fw_fit.framework}: residuals vs model size")
    return ax


def plot_batch_curve(fw_fit, ax=None):
    """Partial residuals of the batch term per GiB of model memory against batch size,
    with the fitted ``seed`` (log2) and ``boxcox`` curves."""

    plt = _plt()
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    obs = fw_fit.observations
    x = obs.features
    b = np.asarray(x["batch_size"], dtype=float)
    M = np.asarray(x["model_mem_gib"], dtype=float)
    seed = fw_fit.specs["seed"]
    beta = seed.param_dict()["batch_scaling"]
    part = (obs.y - SEED.predict_response(x, seed.estimate)) / M + beta * np.log2(b)
    ax.scatter(b, part, s=14, label="partial residual (seed)")
    grid = np.unique(np.concatenate([np.geomspace(max(b.min(), 1.0), max(b.max(), 2.0), 60), b]))
    ax.plot(grid, beta * np.log2(grid), "C1-", label=f"seed: {_fmt(beta)} x log2(b)")
    bc = fw_fit.specs.get("boxcox")
    if bc is not None and bc.status == "fitted":
        d = bc.param_dict()
        ax.plot(grid, d["batch_scaling"] * boxcox_batch(grid, d["lambda"]), "C2--",
                label=f"boxcox: lambda = {d['lambda']:.2f}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size b (concurrent sequences)")
    ax.set_ylabel("batch overhead / model memory M")
    ax.set_title(f"{fw_fit.framework}: batch term")
    ax.legend(fontsize=8)
    return ax


def _save(fig, path: Path):
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})


def _figures(fw_fit, reports_dir: Path) -> dict:
    if fw_fit.status != "fitted" or fw_fit.observations.n_used == 0:
        return {}
    plt = _plt()
    out = {}
    fw = fw_fit.framework
    for key, fn in (("predicted_vs_measured", plot_predicted_vs_measured),
                    ("residuals_vs_size", plot_residuals_vs_size),
                    ("batch_curve", plot_batch_curve)):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        try:
            fn(fw_fit, ax=ax)
            rel = Path("figures") / f"{fw}_{key}.png"
            _save(fig, reports_dir / rel)
            out[key] = rel.as_posix()
        finally:
            plt.close(fig)
    return out


# ------------------------------------------------------------------------------ tables
def coefficient_changes(doc: dict, previous: dict | None) -> list:
    """Coefficients of specs present in both versions: (spec, name, old, new, se, moved).

    ``moved`` is True when ``|new - old|`` exceeds the new standard error (or the old one
    where the new is missing).
    """
    if not previous:
        return []
    out = []
    for name, spec in doc["specs"].items():
        old = previous.get("specs", {}).get(name)
        if old is None:
            continue
        olds = {p["name"]: p for p in old["params"]}
        for p in spec["params"]:
            q = olds.get(p["name"])
            if q is None:
                continue
            se = p["se"] if p["se"] is not None else q["se"]
            delta = abs(p["estimate"] - q["estimate"])
            moved = bool(se is not None and delta > se) or (se is None and delta > 0)
            out.append((name, p["name"], q["estimate"], p["estimate"], se, moved))
    return out


def _param_table(spec: dict) -> list:
    lines = ["| parameter | unit | estimate | SE | 95% CI | bounds | identified | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in spec["params"]:
        ci = "-" if p["ci_lower"] is None else f"[{_fmt(p['ci_lower'])}, {_fmt(p['ci_upper'])}]"
        ub = "inf" if p["upper_bound"] is None else _fmt(p["upper_bound"])
        lb = "-inf" if p["lower_bound"] is None else _fmt(p["lower_bound"])
        note = p.get("not_identified_reason") or ("at bound" if p.get("at_bound") else "")
        lines.append(f"| {p['name']} | {p['unit']} | {_fmt(p['estimate'])} | {_fmt(p['se'])} | {ci} | "
                     f"[{lb}, {ub}] | {_fmt(p['identified'])} | {note} |")
    return lines


def _cv_table(cv: dict | None) -> list:
    if not cv or cv.get("mape") is None:
        return [f"Cross-validation: {(cv or {}).get('status', 'not run')}."]
    band = cv.get("coverage_band_95")
    band_txt = (f" (binomial 95% band [{_pct(band[0])}, {_pct(band[1])}]: "
                f"{'inside' if cv.get('coverage_within_band') else 'OUTSIDE'})" if band else "")
    lines = [f"{str(cv.get('scheme', 'leave-one-architecture-out')).capitalize()} over {cv.get('n_folds')} "
             f"architectures ({cv.get('n')} profiles; {cv.get('n_failed_folds', 0)} folds failed): MAPE "
             f"{_pct(cv['mape'])}, median APE {_pct(cv['median_ape'])}, p90 APE {_pct(cv.get('p90_ape'))}, "
             f"90% interval coverage {_pct(cv['coverage_90'])}{band_txt}.", "",
             "| size class | profiles | models | MAPE | median APE | 90% coverage | target MAPE | meets |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c, m in cv["by_size_class"].items():
        lines.append(f"| {c} | {m.get('n')} | {m.get('n_models', '-')} | {_pct(m.get('mape'))} | "
                     f"{_pct(m.get('median_ape'))} | {_pct(m.get('coverage_90'))} | "
                     f"{'< ' + _pct(m['target_mape']) if m.get('target_mape') is not None else '-'} | "
                     f"{_fmt(m.get('meets_target')) if m.get('meets_target') is not None else '-'} |")
    return lines


def _spec_section(name, spec, selected) -> list:
    mark = " (selected)" if name == selected else ""
    lines = [f"### {name}{mark}", "", f"`{spec['formula']}`", "", f"Status: {spec['status']}."]
    if spec["status"] == "fitted" or spec["status"] == "unfitted":
        em = spec.get("error_model") or {}
        between = (f"between-architecture scale tau {_fmt(em.get('between_scale'))}" if em.get("between_rule") == "estimated"
                   else f"between-architecture scale not estimable: conservative stand-in "
                        f"{_fmt(em.get('conservative_scale'))}" if em.get("between_rule") == "conservative"
                   else "independent errors")
        lines += ["", *_param_table(spec), "",
                  f"Error model (log units of activations + overhead; weights and KV are exact): within-architecture "
                  f"scale sigma {_fmt(spec['residual_scale'])}, {between}; {em.get('n_groups', '-')} architectures, "
                  f"t on {_fmt(em.get('df'))} df. n {spec['nobs']}, AIC {_fmt(spec['aic'], 6)}, "
                  f"BIC {_fmt(spec['bic'], 6)}."]
    else:
        lines.append(f"{spec.get('message', '')}")
    return lines + [""]


def _hypothesis_section(h: dict | None) -> list:
    lines = ["## Log-scaling hypothesis", ""]
    if not h:
        return lines + ["Not run.", ""]
    lines += [f"**Verdict:** {h['verdict']}", ""]
    if h.get("testable"):
        bt = h["batch_term"]
        lam = h["lambda"] or {}
        lines += ["| test | statistic | df | p-value |", "| --- | --- | --- | --- |",
                  f"| F: no batch term vs seed | {_fmt(bt['f_test']['statistic'])} | "
                  f"{bt['f_test']['df_num']}, {bt['f_test']['df_denom']} | {_fmt(bt['f_test']['pvalue'])} |",
                  f"| LR: no batch term vs seed | {_fmt(bt['lr_test']['statistic'])} | {bt['lr_test']['df']} | "
                  f"{_fmt(bt['lr_test']['pvalue'])} (boundary-corrected {_fmt(bt['pvalue_boundary'])}; clustered "
                  f"parametric bootstrap {_fmt(bt.get('pvalue_bootstrap'))}) |"]
        for key, label in (("lr_lambda0", "LR: lambda = 0 (log)"), ("lr_lambda1", "LR: lambda = 1 (linear)")):
            t = lam.get(key)
            if t:
                lines.append(f"| {label} | {_fmt(t['statistic'])} | {t['df']} | {_fmt(t['pvalue'])}"
                             f"{' (bootstrap ' + _fmt(t['pvalue_bootstrap']) + ')' if t.get('pvalue_bootstrap') is not None else ''} |")
        lines.append("")
        lines.append(f"Distinct stated batch sizes: {', '.join(f'{b:g}' for b in h['distinct_batch_sizes'])}; "
                     f"rows with a defaulted batch size: {h.get('batch_defaulted_rows', 'none')}.")
    lines.append("")
    ps = h.get("per_series")
    if ps:
        lines += ["### Per series: only the batch size changes", "", ps["summary"], ""]
        if ps["series"]:
            lines += ["| series | prompt, output tokens | batch sizes | overhead per doubling (GiB) | p | "
                      "total per sequence (GiB) | physics per sequence (GiB) | R^2 line in b / in log2 b |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for r in ps["series"]:
                se = r["overhead_per_doubling_se_gib"]
                lines.append(
                    f"| {r['series']} | {r['input_len']:g}, {r['output_len']:g} | "
                    f"{', '.join(f'{b:g}' for b in r['batch_sizes'])} | {_fmt(r['overhead_per_doubling_gib'])}"
                    f"{' +- ' + _fmt(se) if se is not None else ''} | {_fmt(r['overhead_per_doubling_pvalue'])} | "
                    f"{_fmt(r['total_per_sequence_gib'])} | {_fmt(r['physics_per_sequence_gib'])} | "
                    f"{_fmt(r['total_r2_linear_in_b'])} / {_fmt(r['total_r2_linear_in_log2_b'])} |")
            lines.append("")
    return lines


def _unit_base_section(records) -> list:
    """Sources whose "MB"/"GB" base is unverified or inferred, and what the likelihood chose."""
    lines = ["## Unit base of sources printing 'MB'/'GB'", ""]
    if not records:
        return lines + ["No source of this framework has an unverified or inferred unit base.", ""]
    lines += ["A source whose 'MB'/'GB' may be decimal (10^6 / 10^9 B) or binary (MiB / GiB) gets one factor "
              "chosen by the likelihood under the selected spec (`fitting.overhead.unit_bases`): *unverified* "
              "sources enter the fit only when the ratio reaches 20 (log 3.00); *inferred* sources (base read "
              "from a related script) keep their documented reading and are checked with the source left out "
              "of the fit. log LR: log-likelihood of the chosen reading minus the other's (inf: the other "
              "reading puts figures at or below the exact weights + KV).", "",
              "| source | kind | unit | stored as | profiles | evaluated | chosen | log LR | status | note |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        d = r.to_dict()
        llr = d["log_likelihood_ratio"]
        llr = "-" if llr is None else ("inf" if llr == float("inf") else f"{llr:.2f}")
        lines.append(f"| {d['source']} | {d['kind']} | {d['label'] or '-'} | {d['stored_as'] or '-'} | "
                     f"{d['n_profiles']} | {d['n_evaluated']} | {d['chosen'] or '-'} | {llr} | {d['status']} | "
                     f"{d['note'].replace('|', '/')} |")
    return lines + [""]


def render_markdown(fw_fit, doc: dict, previous: dict | None, figures: dict, *, skipped=(),
                    hypothesis: dict | None = None) -> str:
    """The report text of one framework (markdown)."""
    fw = doc["framework"]
    prof = doc["profiles"]
    lines = [f"# Overhead fit: {fw}", "",
             f"Coefficient file version v{doc['version']:04d} ({doc['created']}), status **{doc['status']}**"
             + (f": {doc['status_reason']}" if doc.get("status_reason") else "") + ".",
             f"Package {doc['package_version']}, input sha256 `{doc['input_sha256'][:16]}...`, seed {doc['seed']}.",
             "",
             f"Observed quantity `{doc['observed_quantity']['name']}` (GiB per GPU): "
             f"{doc['observed_quantity']['description']} KV cache mode: {doc['kv_cache_mode']}.",
             "",
             f"Profiles: {prof['n_used']} used of {prof['n_total']} ({prof.get('n_models', 0)} models); "
             f"{len(prof['excluded'])} excluded; batch size defaulted in {prof.get('n_batch_defaulted', 0)}.",
             ""]
    if doc["status"] == "unfitted":
        fb = doc["fallback"]
        lines += ["## Fallback", "",
                  f"Too little data for a fit. The estimator falls back to the {fb['source']} "
                  f"({fb.get('text', '')}), marked `unfitted`, with a deliberately wide residual scale "
                  f"of {fb.get('residual_scale')} log units on {fb.get('df_resid')} df.", ""]
    else:
        sel = doc.get("selection") or {}
        lines += ["## Spec selection", "", f"Selected: **{doc['selected_spec']}** ({sel.get('rule', '')}).", "",
                  "| spec | CV MAPE | AIC | BIC |", "| --- | --- | --- | --- |"]
        for n, c in (sel.get("candidates") or {}).items():
            lines.append(f"| {n} | {_pct(c.get('cv_mape'))} | {_fmt(c.get('aic'), 6)} | {_fmt(c.get('bic'), 6)} |")
        lines.append("")
    lines += ["## Coefficients", ""]
    for name, spec in doc["specs"].items():
        lines += _spec_section(name, spec, doc["selected_spec"])
    if doc.get("cuda_graph"):
        lines += ["### CUDA-graph term (separate response)", ""] + _spec_section("cuda_graph", doc["cuda_graph"], "")[4:]
    if figures:
        lines += ["## Figures", ""]
        for key, rel in figures.items():
            lines += [f"![{key.replace('_', ' ')}]({rel})", ""]
    if doc["status"] == "fitted":
        lines += ["## Accuracy on unseen models (leave-one-architecture-out)", ""]
        if doc.get("nested_cv"):
            lines += ["### The whole procedure (spec selection nested in the folds): the accuracy we report", "",
                      *_cv_table(doc["nested_cv"]), "",
                      "Spec chosen per held-out architecture: " + ", ".join(
                          f"{k}: {v}" for k, v in sorted((doc["nested_cv"].get("chosen") or {}).items())) + ".", ""]
        for name in doc["specs"]:
            lines += [f"### {name}", "", *_cv_table(doc["specs"][name].get("cv")), ""]
    lines += _hypothesis_section(hypothesis if hypothesis is not None else doc.get("hypothesis"))
    sel_spec = doc["specs"][doc["selected_spec"]]
    outl = sel_spec.get("outliers") or []
    lines += ["## Flagged profiles (outlier screening)", ""]
    if outl:
        lines += ["Selected spec: |studentized residual| > 3 or Cook's D > 4/n. Not removed (use "
                  "`--drop-outliers` to refit without them).", "",
                  "| profile | studentized residual | Cook's D | leverage |", "| --- | --- | --- | --- |"]
        for o in outl:
            lines.append(f"| {o['profile_id']} | {_fmt(o['studentized_resid'])} | {_fmt(o['cooks_d'])} | "
                         f"{_fmt(o.get('leverage'))} |")
    else:
        lines.append("None.")
    lines.append("")
    lines += ["## Change from the previous version", ""]
    changes = coefficient_changes(doc, previous)
    if previous is None:
        lines.append("No previous version.")
    else:
        moved = [c for c in changes if c[5]]
        lines.append(f"Previous: v{previous['version']:04d} ({previous['created']}). "
                     f"{len(moved)} coefficient(s) moved by more than their standard error.")
        lines += ["", "| spec | parameter | previous | now | SE | moved > SE |", "| --- | --- | --- | --- | --- | --- |"]
        for s, n, old, new, se, mv in changes:
            lines.append(f"| {s} | {n} | {_fmt(old)} | {_fmt(new)} | {_fmt(se)} | {'**yes**' if mv else 'no'} |")
    lines.append("")
    lines += _unit_base_section(getattr(fw_fit, "unit_bases", None) or [])
    lines += ["## Excluded profiles", ""]
    if prof["excluded"]:
        counts: dict = {}
        for e in prof["excluded"]:
            key = e["reason"].split(": ")[0] if e["reason"].startswith(("unknown model", "physics failed")) \
                else e["reason"]
            counts[key] = counts.get(key, 0) + 1
        lines += ["| reason | profiles |", "| --- | --- |"]
        lines += [f"| {r} | {n} |" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        lines += ["", "| profile | reason |", "| --- | --- |"]
        lines += [f"| {e['profile_id']} | {e['reason']} |" for e in prof["excluded"]]
    else:
        lines.append("None.")
    lines.append("")
    skipped = list(skipped) or [(s["path"], s["reason"]) for s in prof.get("skipped_files", [])]
    lines += ["## Skipped files (invalid profiles)", ""]
    if skipped:
        lines += [f"- `{p}`: {r}" for p, r in skipped]
    else:
        lines.append("None.")
    lines.append("")
    return "\n".join(lines)


def write_report(fw_fit, doc: dict, previous: dict | None, reports_dir, *, skipped=(),
                 hypothesis: dict | None = None, figures: bool = True) -> Path:
    """Write ``<reports_dir>/<framework>.md`` (and its figures under ``figures/``), atomically.

    Returns
    -------
    Path
        The markdown file.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    figs = _figures(fw_fit, reports_dir) if figures else {}
    text = render_markdown(fw_fit, doc, previous, figs, skipped=skipped, hypothesis=hypothesis)
    target = reports_dir / f"{doc['framework']}.md"
    return atomic_write_text(target, text)
