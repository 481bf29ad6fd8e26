"""Overhead specs, the observation table and the per-framework fit (SIMULATED data only)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from _sim_profiles import TRUE_SEED, simulated_observations
from fitting.overhead.fit import (FRAMEWORK_SPECS, MIN_MODELS, MIN_PROFILES, SEED_PLAN_CONSTANTS, cross_validate,
                                   fit_framework, fit_spec, identify, predict_interval, screen_outliers)
from fitting.overhead.specs import BOXCOX, CUDA_GRAPH, PHYSICAL, SEED, get_spec

FD_RTOL = 1e-5          # central differences vs analytic Jacobian
EXACT_RTOL = 1e-6       # noise-free recovery
Z3 = 3.0                # binomial tolerance in standard deviations


def _features(n=40, seed=0, tp=(1, 2, 4), batch=None):
    rng = np.random.default_rng(seed)
    w_total = rng.uniform(2.0, 140.0, n)
    n_gpu = np.asarray(tp, dtype=float)[rng.integers(0, len(tp), n)]
    b = (2.0 ** rng.integers(0, 9, n)) if batch is None else np.asarray(batch, dtype=float)[rng.integers(0, len(batch), n)]
    w = w_total / n_gpu
    kv = rng.uniform(0.0, 3.0, n)
    act = 0.03 * w + 0.2
    return {"weights_gib": w, "weights_total_gib": w_total, "kv_gib": kv, "activations_gib": act,
            "model_mem_gib": w + kv + act, "n_gpus": n_gpu, "tp": n_gpu, "batch_size": b,
            "vocab_size": rng.choice([32000.0, 128256.0, 151936.0], n)}


# ------------------------------------------------------------------------------- specs
@pytest.mark.parametrize("spec,p", [
    (SEED, [0.7, 0.03, 0.05, 0.004]),
    (BOXCOX, [0.7, 0.03, 0.05, 0.004, 0.37]),
    (BOXCOX, [0.7, 0.03, 0.05, 0.004, 0.0]),
    (BOXCOX, [0.7, 0.03, 0.05, 0.004, 1e-9]),
    (BOXCOX, [0.7, 0.03, 0.05, 0.004, -0.8]),
    (PHYSICAL, [0.5, 0.8, 0.2, 0.9, 1.5]),
    (CUDA_GRAPH, [0.1, 0.003]),
])
def test_jacobian_matches_central_differences(spec, p):
    x = _features()
    p = np.asarray(p, dtype=float)
    J = spec.jacobian(x, p)
    for j in range(p.size):
        h = 1e-6 * max(abs(p[j]), 1e-3)
        up, dn = p.copy(), p.copy()
        up[j] += h
        dn[j] -= h
        fd = (spec.evaluate(x, up) - spec.evaluate(x, dn)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, rtol=FD_RTOL, atol=1e-9 * np.max(np.abs(fd)) + 1e-12)


def test_boxcox_limits_are_log2_and_linear():
    x = _features()
    b, M = x["batch_size"], x["model_mem_gib"]
    base = [0.7, 0.03, 0.05, 0.004]
    np.testing.assert_allclose(BOXCOX.evaluate(x, np.array(base + [0.0])), SEED.evaluate(x, np.array(base)), rtol=1e-14)
    lin = BOXCOX.evaluate(x, np.array(base + [1.0])) - BOXCOX.evaluate(x, np.array(base[:3] + [0.0, 1.0]))
    np.testing.assert_allclose(lin, 0.004 * M * (b - 1.0) / math.log(2.0), rtol=1e-12)


def test_cuda_graph_term_is_the_whole_response():
    x = _features()
    p = np.array([0.1, 0.003])
    np.testing.assert_allclose(CUDA_GRAPH.predict_response(x, p), 0.1 + 0.003 * np.minimum(x["batch_size"], 512))
    assert get_spec("cuda_graph") is CUDA_GRAPH
    with pytest.raises(ValueError, match="unknown overhead spec"):
        get_spec("nope")


# ---------------------------------------------------------------------- identifiability
def test_identify_flags_regressors_that_do_not_vary():
    x = _features(tp=(1,), batch=(256,))
    x["kv_gib"] = np.zeros_like(x["kv_gib"])
    seed = identify(SEED, x)
    assert seed["baseline_gib"] is None and seed["proportional"] is None
    assert "zero in every profile" in seed["multi_gpu"]
    assert "linear combination" in seed["batch_scaling"]       # M log2(256) = 8 M
    assert identify(BOXCOX, x)["lambda"] is not None
    phys = identify(PHYSICAL, x)
    assert "zero in every profile" in phys["multi_gpu_gib"] and "zero" in phys["kv_excess"]


def test_lambda_needs_three_distinct_batch_sizes():
    assert "2 distinct" in identify(BOXCOX, _features(batch=(1, 64)))["lambda"]
    assert identify(BOXCOX, _features(batch=(1, 8, 64)))["lambda"] is None


def test_unidentified_parameter_is_fixed_at_zero_without_standard_error():
    obs = simulated_observations(tps=(1,), true=(0.8, 0.03, 0.0, 0.004))
    fit = fit_spec(SEED, obs.features, obs.y)
    i = SEED.param_names.index("multi_gpu")
    assert fit.status == "fitted"
    assert not fit.identified[i] and fit.estimate[i] == 0.0 and math.isnan(fit.se[i])
    assert np.all(fit.cov[i] == 0) and np.all(fit.cov[:, i] == 0)
    assert "zero in every profile" in fit.not_identified_reason["multi_gpu"]
    assert np.all(np.isfinite(fit.se[np.arange(4) != i]))


# ------------------------------------------------------------------------------ fitting
def test_noise_free_data_recover_the_coefficients_exactly():
    obs = simulated_observations(sigma_log=0.0)
    fit = fit_spec(SEED, obs.features, obs.y)
    np.testing.assert_allclose(fit.estimate, TRUE_SEED, rtol=EXACT_RTOL)


@pytest.mark.parametrize("spec,true", [("seed", TRUE_SEED), ("boxcox", TRUE_SEED + (0.3,)),
                                       ("physical", (0.6, 0.9, 0.15, 0.0, 2.0))])
def test_fit_recovers_simulated_coefficients_within_their_intervals(spec, true):
    obs = simulated_observations(spec=spec, true=true, sigma_log=0.01, seed=3, n_per_model=15)
    fit = fit_spec(spec, obs.features, obs.y)
    assert fit.status == "fitted"
    ok = fit.identified
    assert np.all((fit.ci_lower[ok] <= np.asarray(true)[ok]) & (np.asarray(true)[ok] <= fit.ci_upper[ok])), \
        (fit.estimate, fit.ci_lower, fit.ci_upper)


def test_prediction_interval_coverage_on_new_simulated_data():
    obs = simulated_observations(sigma_log=0.05, seed=5, n_per_model=10)
    fit = fit_spec(SEED, obs.features, obs.y)
    new = simulated_observations(sigma_log=0.05, seed=6, n_per_model=60)
    _, lo, hi = predict_interval(SEED, fit, new.features, level=0.90)
    cover = np.mean((new.y >= lo) & (new.y <= hi))
    n = new.y.size
    assert abs(cover - 0.90) <= Z3 * math.sqrt(0.9 * 0.1 / n) + 0.02


def test_predict_interval_agrees_with_the_nls_engine():
    obs = simulated_observations(sigma_log=0.03, seed=2)
    fit = fit_spec(SEED, obs.features, obs.y)
    pred, lo, hi = predict_interval(SEED, fit, obs.features, level=0.90)
    # the engine fits the uncertain part U = y - (weights + KV); the prediction path adds the
    # exact part back and moment-matches the parameter variance (log1p(v) vs v: ~1e-8 here)
    exact = SEED.exact_offset(obs.features)
    frame = fit.results.get_prediction(obs.features).summary_frame(alpha=0.10)
    np.testing.assert_allclose(pred, exact + frame["mean"], rtol=1e-10)
    np.testing.assert_allclose(lo, exact + frame["obs_ci_lower"], rtol=1e-6)
    np.testing.assert_allclose(hi, exact + frame["obs_ci_upper"], rtol=1e-6)


def test_outlier_screening_flags_a_planted_outlier():
    obs = simulated_observations(sigma_log=0.01, seed=4)
    y = obs.y.copy()
    y[17] *= 1.25
    fit = fit_spec(SEED, obs.features, y)
    flagged = screen_outliers(SEED, fit, obs.features, y, obs.table["profile_id"].to_numpy())
    assert flagged and flagged[0]["profile_id"] == obs.table["profile_id"][17]
    assert abs(flagged[0]["studentized_resid"]) > 3


def test_cross_validation_predicts_each_model_from_the_others_only():
    obs = simulated_observations(sigma_log=0.01, seed=7, n_per_model=8)
    cv = cross_validate(SEED, obs)
    held = obs.groups == "sim-14b"
    train = ~held
    fit = fit_spec(SEED, {k: v[train] for k, v in obs.features.items()}, obs.y[train], groups=obs.groups[train])
    pred, *_ = predict_interval(SEED, fit, {k: v[held] for k, v in obs.features.items()})
    np.testing.assert_allclose(cv["predictions"]["pred_gib"][held], pred, rtol=1e-10)
    assert cv["n_folds"] == len(set(obs.groups)) and cv["mape"] < 0.03
    assert set(cv["by_size_class"]) == {"1-2B", "3-6B", "7-8B", "13-30B", "40-70B", "MoE"}
    assert cv["by_size_class"]["7-8B"]["target_mape"] == 0.05


def test_framework_with_too_little_data_is_unfitted_with_seed_plan_constants():
    obs = simulated_observations("transformers", n_models=MIN_MODELS - 1, n_per_model=MIN_PROFILES)
    fit = fit_framework(obs)
    assert fit.status == "unfitted" and "too little data" in fit.reason
    spec = fit.specs["seed"]
    assert spec.param_dict() == pytest.approx(SEED_PLAN_CONSTANTS["default"])
    assert spec.residual_scale > 0.3 and np.all(np.isnan(spec.se))
    vllm = fit_framework(simulated_observations("vllm", n_models=1)).specs["seed"].param_dict()
    assert vllm["baseline_gib"] == pytest.approx(14e9 / 2**30)


def test_fit_framework_selects_the_generating_spec():
    obs = simulated_observations(spec="physical", true=(0.6, 0.9, 0.15, 0.0, 2.0), sigma_log=0.01,
                                 seed=8, n_per_model=10)
    fit = fit_framework(obs)
    assert fit.status == "fitted" and fit.selected_spec == "physical"
    assert set(fit.specs) == {"seed", "boxcox", "physical"} | set(FRAMEWORK_SPECS.get(fit.framework, ()))


# ------------------------------------------------------------------ observation table
def _frame(rows):
    base = {"profile_id": None, "path": None, "framework": "vllm", "model_id": "meta-llama/Llama-3.1-8B",
            "gpu_count": None, "tp": 1, "pp": 1, "batch_size": None, "input_len": None, "output_len": None,
            "context_len": None, "max_num_seqs": None, "max_num_batched_tokens": None, "dtype": "bfloat16",
            "quantization": None, "kv_cache_dtype": None, "measured_scope": "per_gpu", "use_in_fit": True,
            "exclude_reason": None, "series": None, "weights_gib": np.nan, "non_torch_gib": np.nan,
            "activation_peak_gib": np.nan, "peak_torch_gib": np.nan, "cuda_graph_gib": np.nan,
            "peak_allocated_gib": np.nan, "peak_total_gib": np.nan}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_build_observations_response_exclusions_and_defaults():
    from fitting.overhead.observations import build_observations

    fr = _frame([
        {"profile_id": "a-split", "weights_gib": 14.99, "non_torch_gib": 0.2, "activation_peak_gib": 1.3},
        {"profile_id": "b-v064", "peak_torch_gib": 16.2, "non_torch_gib": 0.3, "max_num_seqs": 64},
        {"profile_id": "c-missing", "weights_gib": 14.99, "activation_peak_gib": 1.3},
        {"profile_id": "d-off", "use_in_fit": False, "exclude_reason": "speculative decoding",
         "weights_gib": 1.0, "non_torch_gib": 0.2, "activation_peak_gib": 1.3},
        {"profile_id": "e-unknown", "model_id": "no-such/model", "weights_gib": 1.0, "non_torch_gib": 0.2,
         "activation_peak_gib": 1.3},
        {"profile_id": "f-unnamed", "model_id": None, "weights_gib": 1.0, "non_torch_gib": 0.2,
         "activation_peak_gib": 1.3},
        {"profile_id": "g-summed", "tp": 2, "gpu_count": 2, "measured_scope": "sum_over_gpus",
         "weights_gib": 15.0, "non_torch_gib": 2.0, "activation_peak_gib": 2.5},
        {"profile_id": "h-other-fw", "framework": "sglang"},
    ])
    obs = build_observations(fr, "vllm")
    assert obs.n_total == 7
    t = obs.table.set_index("profile_id")
    assert list(t.index) == ["a-split", "b-v064", "g-summed"]
    assert t.loc["a-split", "y_gib"] == pytest.approx(14.99 + 0.2 + 1.3)
    assert t.loc["b-v064", "y_gib"] == pytest.approx(16.5) and t.loc["b-v064", "response_form"] == "peak_torch"
    assert t.loc["g-summed", "y_gib"] == pytest.approx(19.5 / 2) and t.loc["g-summed", "weights_gib"] == pytest.approx(7.5)
    assert t.loc["a-split", "batch_size"] == 256 and t.loc["a-split", "batch_defaulted"]
    assert t.loc["b-v064", "batch_size"] == 64 and not t.loc["b-v064", "batch_defaulted"]
    assert t.loc["a-split", "weights_gib"] == pytest.approx(14.99)          # measured offset
    assert not t.loc["b-v064", "weights_measured"]                            # physics weights
    why = {e["profile_id"]: e["reason"] for e in obs.excluded}
    assert why["c-missing"].startswith("missing component") and "non_torch" in why["c-missing"]
    assert why["d-off"] == "not use_in_fit: speculative decoding"
    assert why["e-unknown"] == "unknown model: no-such/model"
    assert why["f-unnamed"] == "model unnamed"
    assert t.loc["a-split", "size_class"] == "7-8B"


def test_growing_framework_uses_workload_kv():
    from fitting.overhead.observations import build_observations
    from fitting.physics.memory import kv_cache_bytes
    from fitting.data.registry import resolve_model

    fr = _frame([{"profile_id": "t1", "framework": "transformers", "batch_size": 8, "input_len": 512,
                  "output_len": 128, "peak_allocated_gib": 20.0},
                 {"profile_id": "t2", "framework": "transformers", "batch_size": 8, "peak_total_gib": 22.0,
                  "input_len": 512}])
    obs = build_observations(fr, "transformers")
    arch = resolve_model("meta-llama/Llama-3.1-8B").architecture
    kv = kv_cache_bytes(arch, num_tokens=640, num_seqs=8) / 2**30
    assert obs.table["profile_id"].tolist() == ["t1"]
    assert obs.features["kv_gib"][0] == pytest.approx(kv)
    assert "peak_allocated" in obs.excluded[0]["reason"]


def test_framework_defaults_follow_the_frameworks_rules():
    """vLLM's default max_num_seqs (1024 on >= 70 GiB non-A100 GPUs in V1 >= 0.9, else 256)
    and the serving engines' float32 -> float16 'auto' dtype."""
    from types import SimpleNamespace

    from fitting.data.frameworks import default_dtype, vllm_default_max_num_seqs

    assert vllm_default_max_num_seqs(79.19, "NVIDIA H100 80GB HBM3", "v1", "0.10.1") == 1024
    assert vllm_default_max_num_seqs(79.15, "NVIDIA A100-SXM4-80GB", "v1", "0.10.1") == 256
    assert vllm_default_max_num_seqs(22.0, "NVIDIA A10G", "v1", None) == 256
    assert vllm_default_max_num_seqs(79.19, "H100", "v0", "0.6.4") == 256
    assert vllm_default_max_num_seqs(79.19, "H100", "v1", "0.8.5") == 256
    assert vllm_default_max_num_seqs(None, None, None, None) == 256
    fp32 = SimpleNamespace(torch_dtype="float32")
    assert default_dtype(fp32, "vllm") == "float16"
    assert default_dtype(fp32, "transformers") == "float32"
    assert default_dtype(SimpleNamespace(torch_dtype="bfloat16"), "vllm") == "bfloat16"
    assert default_dtype(SimpleNamespace(torch_dtype=None), "llamacpp") == "bfloat16"


def test_an_uncertain_part_below_the_exact_parts_resolution_is_not_fitted():
    """SIMULATED: Llama-3.1-8B bf16 measured 0.012 GiB above its weights (0.08% of them) and
    0.6 GiB above: the first is below UNCERTAIN_PART_RESOLUTION of the exact part and is
    excluded with its reason; the second is kept."""
    from fitting.overhead.observations import UNCERTAIN_PART_RESOLUTION, build_observations
    from fitting.data.registry import resolve_model
    from fitting.physics.memory import weight_bytes_per_gpu

    w = weight_bytes_per_gpu(resolve_model("meta-llama/Llama-3.1-8B").architecture) / 2**30
    fr = _frame([{"profile_id": "tiny", "framework": "transformers", "batch_size": 1, "input_len": 0,
                  "output_len": 0, "context_len": 0, "peak_allocated_gib": w + 0.012},
                 {"profile_id": "kept", "framework": "transformers", "batch_size": 1, "input_len": 0,
                  "output_len": 0, "context_len": 0, "peak_allocated_gib": w + 0.6}])
    obs = build_observations(fr, "transformers")
    why = {e["profile_id"]: e["reason"] for e in obs.excluded}
    assert 0.012 < UNCERTAIN_PART_RESOLUTION * w
    assert "below the resolution of the exact part" in why.get("tiny", "")
    assert obs.table["profile_id"].tolist() == ["kept"]
