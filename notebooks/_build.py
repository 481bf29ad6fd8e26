"""Generate the exploration notebooks (outputs stripped) from the cell sources below.

Run ``python notebooks/_build.py`` after editing a cell here; the ``.ipynb`` files are
written without outputs so that they stay reviewable in git. ``tests/test_notebooks.py``
executes all four headless on the committed data and checks that they match this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
from pathlib import Path
import sys

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())
sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
pd.set_option("display.precision", 4)'''

LOAD = '''\
from fitting.data.frameworks import FRAMEWORKS
from fitting.overhead.observations import SIZE_CLASS_ORDER, SIZE_CLASS_TARGETS_MAPE, build_observations
from fitting.data.profiles import load_profiles

pset = load_profiles(ROOT / "profiles", strict=False)
frame = pset.to_frame()
obs = {fw: build_observations(frame, fw) for fw in FRAMEWORKS}
print(f"{len(frame)} profiles loaded, {len(pset.skipped)} invalid files skipped")'''


def _nb(cells) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for kind, src in cells:
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    for i, c in enumerate(nb.cells):  # stable ids: regenerating gives identical files
        c["id"] = f"cell-{i:02d}"
    return nb


NOTEBOOKS = {}

NOTEBOOKS["01_profiles.ipynb"] = [
    ("md", "# 01 · What data we have\n\n"
           "Every profile under `profiles/` (real measurements only), how many the fits can use, and where "
           "the gaps are: coverage by framework, model size, tensor parallelism, batch size and sequence "
           "length. Memory is GiB (2**30 bytes) per GPU."),
    ("code", SETUP),
    ("code", LOAD),
    ("md", "## By framework\n\n`usable` = the profiles the fit of that framework uses "
           "(`fitting.overhead.observations.build_observations`: same response, same exclusions)."),
    ("code", '''\
by_fw = frame.groupby("framework").agg(profiles=("profile_id", "size"), use_in_fit=("use_in_fit", "sum"),
                                       models_named=("model_id", "nunique"))
by_fw["usable"] = [obs[fw].n_used for fw in by_fw.index]
by_fw["usable_models"] = [len(set(obs[fw].groups)) if obs[fw].n_used else 0 for fw in by_fw.index]
by_fw'''),
    ("md", "## By model size\n\nSize classes of the seed plan (dense models by total parameters; every "
           "mixture-of-experts model is `MoE`), usable profiles only."),
    ("code", '''\
used = pd.concat([o.table.assign(framework=fw) for fw, o in obs.items() if o.n_used], ignore_index=True)
classes = [c for c in SIZE_CLASS_ORDER if c in set(used["size_class"])]
size_tab = pd.crosstab(used["framework"], used["size_class"]).reindex(columns=classes, fill_value=0)
size_tab'''),
    ("code", '''\
ax = size_tab.plot.bar(stacked=True, figsize=(8, 3.5), rot=0)
ax.set_ylabel("usable profiles")
ax.set_title("usable profiles by framework and size class")
plt.show()'''),
    ("md", "## Tensor parallelism, batch size and sequence length"),
    ("code", '''\
print("tensor-parallel degree (usable profiles):")
display(pd.crosstab(used["framework"], used["tp"].astype(int)))
print("batch size (vLLM: max_num_seqs; defaulted where the profile is silent):")
display(used.groupby("framework")["batch_size"].describe()[["count", "min", "50%", "max"]]
        .assign(distinct=used.groupby("framework")["batch_size"].nunique(),
                defaulted=used.groupby("framework")["batch_defaulted"].sum()))'''),
    ("code", '''\
lengths = frame.assign(usable=frame["profile_id"].isin(used["profile_id"]))
lengths = lengths[lengths["usable"]]
lengths.groupby("framework")[["input_len", "output_len", "context_len", "max_model_len"]].agg(["count", "median", "max"])'''),
    ("code", '''\
fig, ax = plt.subplots(figsize=(7, 3.5))
for fw, g in used.groupby("framework"):
    ax.scatter(g["params_b"], g["batch_size"], s=18, label=fw, alpha=0.7)
ax.set_xscale("log"); ax.set_yscale("log", base=2)
ax.set_xlabel("model size (billions of parameters)"); ax.set_ylabel("batch size")
ax.set_title("design: model size x batch size (usable profiles)"); ax.legend(fontsize=8)
plt.show()'''),
    ("md", "## The gaps\n\nSize classes with a seed-plan target but no usable profile, per framework with "
           "data, and why profiles were excluded (the first reason of each)."),
    ("code", '''\
gaps = [(fw, c) for fw in sorted(set(used["framework"])) for c in SIZE_CLASS_TARGETS_MAPE
        if not ((used["framework"] == fw) & (used["size_class"] == c)).any()]
print("no usable profile:", ", ".join(f"{fw}/{c}" for fw, c in gaps) or "none")
print("frameworks without any usable profile:", ", ".join(fw for fw, o in obs.items() if not o.n_used) or "none")
reasons = pd.DataFrame([{"framework": fw, "reason": e["reason"].split(":")[0].split(";")[0]}
                        for fw, o in obs.items() for e in o.excluded])
reasons.value_counts().rename("profiles").reset_index().head(20)'''),
]

NOTEBOOKS["02_overhead_fit.ipynb"] = [
    ("md", "# 02 · The overhead fit\n\n"
           "The per-framework overhead model fitted by nonlinear least squares (log error mode) on the "
           "framework with the most usable profiles: the candidate specs compared, the coefficients with "
           "95 % intervals, residuals, and what each term contributes."),
    ("code", SETUP),
    ("code", LOAD),
    ("code", '''\
from fitting.overhead.fit import fit_framework, fit_spec
from fitting.overhead.specs import get_spec

fw = max(obs, key=lambda k: obs[k].n_used)
o = obs[fw]
fit = fit_framework(o, cv=True)
print(f"{fw}: {o.n_used} usable profiles of {len(set(o.groups))} models; status {fit.status}; "
      f"selected spec {fit.selected_spec}")
print(fit.selection.get("rule", fit.reason))'''),
    ("md", "## The specs compared\n\nAIC/BIC in-sample, leave-one-model-out MAPE and the coverage of the "
           "90 % prediction intervals on held-out models."),
    ("code", '''\
pd.DataFrame({name: {"status": f.status, "nobs": f.nobs, "params identified": int(np.sum(f.identified)),
                     "residual scale (log)": f.residual_scale, "AIC": f.aic, "BIC": f.bic,
                     "CV MAPE": (f.cv or {}).get("mape"), "CV coverage 90%": (f.cv or {}).get("coverage_90")}
              for name, f in fit.specs.items()}).T'''),
    ("code", '''\
rows = []
for name, f in fit.specs.items():
    for c, m in ((f.cv or {}).get("by_size_class") or {}).items():
        rows.append({"spec": name, "size class": c, "n": m["n"], "CV MAPE": m["mape"],
                     "target": m.get("target_mape"), "meets": m.get("meets_target")})
pd.DataFrame(rows).pivot_table(index="size class", columns="spec", values="CV MAPE") if rows else "no CV"'''),
    ("md", "## Coefficients of the selected spec"),
    ("code", '''\
sel = fit.specs[fit.selected_spec]
spec = get_spec(fit.selected_spec)
print(spec.formula)
pd.DataFrame({"unit": [p.unit for p in spec.params], "estimate": sel.estimate, "se": sel.se,
              "ci_lower": sel.ci_lower, "ci_upper": sel.ci_upper, "identified": sel.identified,
              "at_bound": sel.at_bound}, index=list(sel.param_names))'''),
    ("md", "## Residuals\n\nLog residuals `log(measured / fitted)` against model size and batch size; "
           "crosses are leave-one-model-out predictions."),
    ("code", '''\
y = o.y
fitted = spec.predict_response(o.features, sel.estimate)
cv_pred = ((sel.cv or {}).get("predictions") or {}).get("pred_gib")
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
axes[0].scatter(y, fitted, s=14, label="in-sample")
if cv_pred is not None:
    axes[0].scatter(y, cv_pred, s=14, marker="x", label="held-out model")
lim = [y.min() * 0.8, y.max() * 1.25]
axes[0].plot(lim, lim, "k--", lw=1); axes[0].set_xscale("log"); axes[0].set_yscale("log")
axes[0].set_xlabel("measured (GiB/GPU)"); axes[0].set_ylabel("predicted"); axes[0].legend(fontsize=8)
r = np.log(y / fitted)
axes[1].scatter(o.table["params_b"], r, s=14); axes[1].axhline(0, color="k", lw=1)
axes[1].set_xscale("log"); axes[1].set_xlabel("billions of parameters"); axes[1].set_ylabel("log residual")
axes[2].scatter(o.features["batch_size"], r, s=14); axes[2].axhline(0, color="k", lw=1)
axes[2].set_xscale("log", base=2); axes[2].set_xlabel("batch size")
fig.suptitle(f"{fw}: {fit.selected_spec}"); plt.tight_layout(); plt.show()'''),
    ("md", "## What each term contributes\n\nEvery spec is linear in its parameters but Box-Cox's lambda, so "
           "a term's contribution is `estimate x regressor`. The drop-one test refits with the term fixed "
           "at 0: likelihood-ratio statistic and AIC change (positive: the term is worth its parameter)."),
    ("code", '''\
from scipy import stats

J = np.asarray(spec.jacobian(o.features, sel.estimate))
rows = []
for i, name in enumerate(sel.param_names):
    contrib = sel.estimate[i] * J[:, i] if name != "lambda" else np.full(len(y), np.nan)
    row = {"term": name, "mean GiB": np.nanmean(contrib), "share of overhead": np.nansum(contrib) /
           np.sum(spec.evaluate(o.features, sel.estimate)), "identified": bool(sel.identified[i])}
    if sel.identified[i] and name != "lambda":
        r0 = fit_spec(spec, o.features, y, fixed={name: 0.0})
        lr = 2 * (sel.loglike - r0.loglike)
        row.update({"LR": lr, "p": stats.chi2.sf(max(lr, 0.0), 1), "dAIC (drop)": r0.aic - sel.aic})
    rows.append(row)
pd.DataFrame(rows).set_index("term")'''),
]

NOTEBOOKS["03_log_scaling.ipynb"] = [
    ("md", "# 03 · Does overhead grow with log2(batch)?\n\n"
           "The seed plan assumes overhead grows with `log2(b)`. Per framework: is there a batch term at "
           "all (F and likelihood-ratio tests), and which shape (Box-Cox `lambda`: 0 = log, 1 = linear), "
           "with the profile-likelihood interval of `lambda`. Where the profiles cannot test it, a SIMULATED "
           "study design shows what data would settle it."),
    ("code", SETUP),
    ("code", LOAD),
    ("code", '''\
from fitting.refit import refit_frame

fits = refit_frame(frame, cv=False)
pd.DataFrame([{"framework": fw, "fit": fit.status, "usable": fit.observations.n_used,
               "testable": h["testable"], "distinct stated batch sizes": len(h["distinct_batch_sizes"]),
               "verdict": h["verdict"]} for fw, (fit, h) in fits.items()]).set_index("framework")'''),
    ("md", "## Tests and the profile likelihood of lambda (testable frameworks)"),
    ("code", '''\
from scipy import stats

testable = {fw: h for fw, (fit, h) in fits.items() if h["testable"]}
for fw, h in testable.items():
    bt, lam = h["batch_term"], h["lambda"] or {}
    print(f"{fw}: F p = {bt['f_test']['pvalue']:.3g}, LR p = {bt['lr_test']['pvalue']:.3g}, "
          f"lambda = {lam.get('estimate')}")
    ci = lam.get("profile_ci")
    if ci:
        grid = np.array(ci["grid"]); ll = np.array([np.nan if v is None else v for v in ci["profile_loglike"]])
        plt.figure(figsize=(6, 3.5))
        plt.plot(grid, 2 * (np.nanmax(ll) - ll), "o-")
        plt.axhline(stats.chi2.ppf(ci["level"], 1), color="r", ls="--", label="95% cut-off")
        plt.axvline(0, color="k", lw=1); plt.axvline(1, color="k", lw=1, ls=":")
        plt.xlabel("lambda"); plt.ylabel("2 (l_max - l_p(lambda))"); plt.title(f"{fw}: profile likelihood")
        plt.legend(); plt.show()
if not testable:
    print("no framework is testable with the committed profiles")'''),
    ("md", "## What data would settle it (SIMULATED)\n\n"
           "A batch-scaling study runs one model at fixed settings over batch sizes 1, 2, 4, ..., 256. "
           "Below, SIMULATED data from such a design (Llama-3.1-8B on vLLM, the selected overhead spec's "
           "typical noise of 2 % in log units): the profile-likelihood interval of `lambda` when the truth "
           "is log scaling, and the rejection rates of the test of `lambda = 0` (size when the truth is "
           "log, power when it is linear). Nothing here is a measurement."),
    ("code", '''\
from fitting.overhead.fit import fit_spec
from fitting.overhead.log_scaling import profile_lambda, simulate_lambda0_rejections
from fitting.overhead.specs import BOXCOX, SEED, build_features
from fitting.data.registry import resolve_model

rng = np.random.default_rng(0)
arch = resolve_model("meta-llama/Llama-3.1-8B-Instruct").architecture
b = np.repeat(2.0 ** np.arange(0, 9), 3)                        # SIMULATED: 9 batch sizes x 3 repeats
x = build_features(arch, framework="vllm", batch_size=b, max_num_batched_tokens=8192)
true = np.array([0.8, 0.03, 0.0, 0.004, 0.0])                   # SIMULATED truth: lambda = 0 (log)
y_sim = BOXCOX.predict_response(x, true) * np.exp(rng.normal(0, 0.02, b.size))
s = fit_spec(SEED, x, y_sim)
bc = fit_spec(BOXCOX, x, y_sim, extra_starts=[np.append(s.estimate, 0.0)])
ci = profile_lambda(x, y_sim, lambda_hat=float(bc.estimate[-1]), loglike_max=bc.loglike)
print(f"SIMULATED: lambda_hat = {bc.estimate[-1]:.2f}, 95% profile CI [{ci['lower']}, {ci['upper']}]")'''),
    ("code", '''\
size = simulate_lambda0_rejections(0.0, n_obs=27, n_reps=25, seed=1)
power = simulate_lambda0_rejections(1.0, n_obs=27, n_reps=25, seed=1)
pd.DataFrame([size, power]).assign(meaning=["size (truth: log)", "power (truth: linear)"])'''),
]

NOTEBOOKS["04_what_fits.ipynb"] = [
    ("md", "# 04 · Will it fit?\n\n"
           "The estimator (`fitting.estimator.Estimator`) on the committed coefficient files: memory of a "
           "configuration per GPU with 90 % prediction intervals, the probability that it fits on a GPU, "
           "the largest batch that fits with 95 % confidence, and vLLM's KV pool in tokens."),
    ("code", SETUP),
    ("code", '''\
import tempfile
from fitting.estimator import Estimator
from fitting.data.gpus import gpu_info


def load_estimator(framework):
    """The committed coefficient file, or (when there is none) a fresh refit into a temporary folder."""
    path = ROOT / "fitted_params" / framework
    if (path / "latest.json").is_file():
        return Estimator.load(path)
    from fitting.refit import refit
    tmp = Path(tempfile.mkdtemp())
    refit(ROOT / "profiles", out_dir=tmp, frameworks=[framework], write_reports=False)
    return Estimator.load(tmp / framework)


vllm = load_estimator("vllm")
vllm'''),
    ("md", "## One question, every answer\n\nLlama-3.1-8B-Instruct on one H100 under vLLM, 64 concurrent "
           "sequences of 2048 + 512 tokens."),
    ("code", '''\
q = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100-80GB", batch_size=64, input_len=2048,
               output_len=512)
keys = ["weights_gib", "activations_gib", "overhead_gib", "non_kv_gib", "non_kv_lower_gib", "non_kv_upper_gib",
        "kv_cache_gib", "total_gib", "total_lower_gib", "total_upper_gib", "gpu_memory_gib", "fit_probability",
        "max_batch_size", "max_context_len", "kv_pool_tokens", "kv_pool_tokens_lower", "kv_pool_tokens_upper",
        "min_gpu_memory_utilization"]
display(pd.Series({k: q.get(k) for k in keys}))
for w in q["warnings"]:
    print("warning:", w)'''),
    ("md", "## Which models fit on which GPU\n\nProbability that the configuration fits (vLLM at "
           "`gpu_memory_utilization` 0.9, 32 sequences of 4096 tokens) and the largest batch that fits with "
           "95 % confidence."),
    ("code", '''\
models = ["Qwen/Qwen2.5-1.5B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-14B-Instruct",
          "meta-llama/Llama-3.1-70B-Instruct"]
gpus = ["L4", "A100-40GB", "H100-80GB", "H200"]
rows = []
for m in models:
    for g in gpus:
        G = gpu_info(g).usable_gib
        for tp in (1, 2, 4):
            kw = dict(tp=tp, batch_size=32, input_len=4096, output_len=0)
            try:
                p = vllm.fit_probability(m, gpu_memory_gib=G, **kw)
                mb = vllm.max_batch_size(m, gpu_memory_gib=G, tp=tp, input_len=4096, output_len=0)
            except ValueError as exc:          # e.g. tp does not divide the attention heads
                p, mb = np.nan, None
            rows.append({"model": m.split("/")[-1], "gpu": g, "tp": tp, "P(fits)": p, "max batch (95%)": mb})
table = pd.DataFrame(rows)
table.pivot_table(index=["model", "tp"], columns="gpu", values="P(fits)").round(3)'''),
    ("code", '''\
table.pivot_table(index=["model", "tp"], columns="gpu", values="max batch (95%)")'''),
    ("md", "## Memory against batch size, with intervals\n\nvLLM: what the pool fraction must hold "
           "(non-KV + the workload's KV cache) against `0.9 x` the GPU; transformers: the peak against the "
           "GPU (an unfitted framework falls back to the seed plan's constants with deliberately wide intervals)."),
    ("code", '''\
batch = 2 ** np.arange(0, 10)
model = "meta-llama/Llama-3.1-8B-Instruct"
G = gpu_info("H100-80GB").usable_gib
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
v = vllm.predict(model, batch_size=batch, input_len=2048, output_len=512, as_frame=True)
need = v["non_kv_gib"] + v["kv_cache_gib"]
axes[0].plot(batch, need, "o-", label="non-KV + workload KV")
axes[0].fill_between(batch, v["non_kv_lower_gib"] + v["kv_cache_gib"], v["non_kv_upper_gib"] + v["kv_cache_gib"],
                     alpha=0.3, label="90% interval")
axes[0].axhline(0.9 * G, color="r", ls="--", label="0.9 x H100")
axes[0].set_title(f"vLLM v{vllm.version} ({vllm.status})")
tf = load_estimator("transformers")
t = tf.predict(model, batch_size=batch, input_len=2048, output_len=512, as_frame=True)
axes[1].plot(batch, t["total_gib"], "o-", label="peak")
axes[1].fill_between(batch, t["total_lower_gib"], t["total_upper_gib"], alpha=0.3, label="90% interval")
axes[1].axhline(G, color="r", ls="--", label="H100")
axes[1].set_title(f"transformers v{tf.version} ({tf.status})")
for ax in axes:
    ax.set_xscale("log", base=2); ax.set_yscale("log"); ax.set_xlabel("batch size"); ax.set_ylabel("GiB per GPU")
    ax.legend(fontsize=8)
plt.tight_layout(); plt.show()
for w in t.attrs.get("warnings", []):
    print("transformers warning:", w)'''),
]


def build(out_dir: Path = HERE) -> list:
    """Write every notebook (no outputs) to ``out_dir``; returns the paths."""
    paths = []
    for name, cells in NOTEBOOKS.items():
        nb = _nb(cells)
        nbformat.validate(nb)
        path = Path(out_dir) / name
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {p}")
