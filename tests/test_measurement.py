"""Measurement models (fitting.overhead.measurement): the non-torch memory of a GPU from
paired NVML-used / reserved profiles, and allocated + non-torch totals turned into the
allocated peak the fit models. SIMULATED data with known truth, then the real profiles."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fitting.data.profiles import load_profiles
from fitting.overhead.measurement import ALLOCATED_PLUS_NON_TORCH, estimate_non_torch
from fitting.overhead.observations import build_observations

ROOT = Path(__file__).resolve().parents[1]


def simulated_pairs(rng, n, true_c, sd=0.01, share_bad=0.2):
    """SIMULATED: reserved peaks and NVML-used peaks of one run (used = reserved + C + noise);
    a share of pairs mixes two processes (used far below reserved), as in the real data."""
    reserved = rng.uniform(5.0, 60.0, n)
    used = reserved + true_c + rng.normal(0.0, sd, n)
    bad = rng.random(n) < share_bad
    used[bad] = reserved[bad] - rng.uniform(1.0, 50.0, bad.sum())
    return pd.DataFrame({"profile_id": [f"sim-{i}" for i in range(n)], "gpu_name": "SIM-GPU",
                         "peak_total_gib": used, "peak_reserved_gib": reserved, "flags": [()] * n})


def test_non_torch_is_recovered_within_its_interval():
    """Over 200 simulated datasets the 95% interval of the median covers the true C in
    about 95% of them (binomial band for 200 draws: [0.91, 0.98]), and the estimate is
    unbiased despite a fifth of mixed-process pairs."""
    rng = np.random.default_rng(7)
    true_c, covered, est = 1.37, 0, []
    for _ in range(200):
        e = estimate_non_torch(simulated_pairs(rng, 100, true_c, share_bad=0.0))["SIM-GPU"]
        covered += abs(e.estimate_gib - true_c) <= 1.96 * e.se_gib
        est.append(e.estimate_gib)
    assert 0.91 <= covered / 200 <= 0.985
    assert abs(np.mean(est) - true_c) < 0.002
    e = estimate_non_torch(simulated_pairs(rng, 100, true_c, share_bad=0.2))["SIM-GPU"]
    assert abs(e.estimate_gib - true_c) < 0.02 and e.n_negative > 5


def test_totals_of_the_other_kind_and_small_gpus_are_skipped():
    rng = np.random.default_rng(1)
    f = simulated_pairs(rng, 10, 1.0, share_bad=0.0)
    f.loc[:4, "flags"] = pd.Series([(ALLOCATED_PLUS_NON_TORCH,)] * 5)
    assert estimate_non_torch(f)["SIM-GPU"].n == 5
    assert estimate_non_torch(f.iloc[:7]) == {}  # 2 pairs on the GPU: no estimate


def test_real_pairs_and_allocated_plus_non_torch_profiles():
    """The A100 pairs of optimum-benchmark (Dec 2023) give C = 1.37 GiB, and the optimum
    benchmark_gptq.py totals less C agree with weights + KV + the transformers physics:
    the measured/physics ratio of the uncertain part has median within 5% of 1."""
    frame = load_profiles(ROOT / "profiles").to_frame()
    tf = frame[frame["framework"] == "transformers"]
    est = estimate_non_torch(tf)["NVIDIA A100-SXM4-80GB"]
    assert est.estimate_gib == pytest.approx(1.372, abs=0.005) and est.n >= 100
    obs = build_observations(frame, "transformers")
    t = obs.table
    sub = t[t.response_form == ALLOCATED_PLUS_NON_TORCH]
    assert len(sub) == 40
    ratio = (sub.y_gib - sub.weights_gib - sub.kv_gib) / sub.activations_gib
    assert abs(float(np.median(ratio)) - 1.0) < 0.05
    mm = obs.observed_quantity["measurement_models"][0]
    assert mm["gpu_name"] == "NVIDIA A100-SXM4-80GB" and mm["n_pairs"] == est.n


def test_fit_questions_add_the_non_torch_memory():
    """The transformers fit models PyTorch's allocated peak; whether a run fits on a GPU also
    needs the memory outside the allocator. The estimator adds the file's measured non-torch
    term (1.37 GiB, A100) to every fit question, says so, and warns on another GPU."""
    from fitting.estimator import Estimator

    est = Estimator.load(ROOT / "fitted_params" / "transformers" / "latest.json")
    assert est.non_torch_gib == pytest.approx(1.372, abs=0.005)
    kw = dict(batch_size=8, input_len=2048, output_len=256)
    pred = est.predict("Qwen/Qwen2.5-7B", **kw)
    g = pred.total_gib + est.non_torch_gib  # exactly at the median of the device-level need
    assert est.fit_probability("Qwen/Qwen2.5-7B", gpu_memory_gib=g, **kw) == pytest.approx(0.5, abs=1e-6)
    a100 = est.query("Qwen/Qwen2.5-7B", gpu="A100-80GB", **kw)
    l40s = est.query("Qwen/Qwen2.5-7B", gpu="L40S", **kw)
    assert a100["non_torch_gib"] == est.non_torch_gib and "A100-SXM4-80GB" in a100["non_torch_source"]
    assert not any("non-torch memory added" in w for w in a100["warnings"])
    assert any("non-torch memory added" in w for w in l40s["warnings"])
    vllm = Estimator.load(ROOT / "fitted_params" / "vllm" / "latest.json")
    assert vllm.non_torch is None and vllm.non_torch_gib == 0.0  # vLLM's response already holds it
