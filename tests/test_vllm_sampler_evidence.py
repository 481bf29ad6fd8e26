"""vLLM's sampler implementation read from each run's own log line, and what it does to the
non-KV footprint: two real Qwen2-7B-Instruct starts on vLLM 0.10.1.1 (dennislee22's public
benchmark logs, same settings apart from GPU and utilization), one with FlashInfer's
top-k/top-p sampler ('Using FlashInfer for top-p & top-k sampling.') and one without
('FlashInfer is not available. Falling back to the PyTorch-native implementation')."""

from pathlib import Path

import pytest

from fitting.data.profiles import load_profiles
from fitting.data.vllm_settings import vllm_settings_from_record
from fitting.ingest.harvest import convert_logs
from fitting.overhead.observations import build_observations
from fitting.overhead.specs import SAMPLER_REGIME_CODES

ROOT = Path(__file__).resolve().parents[1]
FI_OFF = "vllm-qwen-qwen2-7b-instruct-9ed7346fc2"  # A100 40GB, tp 2, u 0.5, FlashInfer not available
FI_ON = "vllm-qwen-qwen2-7b-instruct-140e0c3853"   # A100 80GB, tp 2, u 0.25, FlashInfer in use


@pytest.fixture(scope="module")
def table():
    frame = load_profiles(ROOT / "profiles").to_frame()
    return build_observations(frame, "vllm").table.set_index("profile_id")


def test_the_parser_keeps_the_sampler_and_all_reduce_lines():
    converted, problems = convert_logs(ROOT / "profiles" / "public")
    assert not problems, problems
    profiles = {p["profile_id"]: p for p in converted}
    off, on = profiles[FI_OFF], profiles[FI_ON]
    assert off["gpu"]["name"] == "A100 40GB" and on["gpu"]["name"] == "A100 80GB"  # the 'gpu' header
    s_off = vllm_settings_from_record({"evidence": off["provenance"]["evidence"]})
    s_on = vllm_settings_from_record({"evidence": on["provenance"]["evidence"]})
    assert s_off["sampler_flashinfer"] is False and s_on["sampler_flashinfer"] is True
    assert s_off["custom_all_reduce"] is False and s_on["custom_all_reduce"] is False


def test_each_run_gets_its_own_sampler_regime(table):
    assert table.loc[FI_OFF, "sampler_regime"] == SAMPLER_REGIME_CODES["v1_sort"]
    assert table.loc[FI_ON, "sampler_regime"] == SAMPLER_REGIME_CODES["v1_flashinfer"]
    # the shared-data records of the same benchmark: lines read in their source files
    same_repo = [pid for pid in table.index if pid.startswith("vllm-qwen-qwen2-7b-instruct-local-dir")]
    assert len(same_repo) == 3
    assert all(table.loc[pid, "sampler_regime"] == SAMPLER_REGIME_CODES["v1_flashinfer"] for pid in same_repo)


def test_the_sampler_difference_is_what_the_runs_measured(table):
    """Measured non-KV above the weights: 1.60 GiB without FlashInfer, 0.65 GiB with it (same
    model, version, tp, max_num_seqs 256, max_num_batched_tokens 2048). The physics puts the
    difference in the sampler's temporaries (9.5 against 3 fp32 copies of [256, 152064]
    logits): 0.87 GiB against the measured 0.95 GiB, within 10%."""
    off, on = table.loc[FI_OFF], table.loc[FI_ON]
    measured = (off.y_gib - off.weights_gib) - (on.y_gib - on.weights_gib)
    physics = off.activations_gib - on.activations_gib
    assert measured == pytest.approx(0.95, abs=0.01)
    assert physics == pytest.approx(measured, rel=0.10)


def test_release_at_a_date():
    from fitting.data.vllm_releases import VLLM_RELEASES, vllm_release_at

    assert vllm_release_at("2025-09-28") == "0.10.2"      # 0.10.2 on 2025-09-13, 0.11.0 on 2025-10-04
    assert vllm_release_at("2026-03-07") == "0.17.0"      # the release day itself counts
    assert vllm_release_at("2025-09") == "0.10.2"         # a month: its newest release
    assert vllm_release_at("2023-01-01") is None and vllm_release_at(None) is None
    assert vllm_release_at("approx. 2025") is None
    dates = [d for _v, d in VLLM_RELEASES]
    assert dates == sorted(dates) and len(VLLM_RELEASES) > 90


def test_a_dated_run_without_a_version_gets_the_mechanics_of_its_date(table):
    """A Qwen3-8B FP8 start posted 2025-09-28 names no version: the newest release then was
    0.10.2, whose V1 sampler sorts (no FlashInfer in the pip install): 1.40 GiB physics against
    the 1.40 GiB it printed. With the newest mechanics (Triton top-k/top-p) it was 0.60 GiB."""
    row = table.loc["vllm-qwen3-8b-fp8-local-98c3c8ec4c"]
    assert row.sampler_regime == SAMPLER_REGIME_CODES["v1_sort"]
    assert row.activations_gib == pytest.approx(1.40, rel=0.02)


def test_the_pool_from_its_token_count_matches_the_printed_gib():
    """Where a log prints the pool both ways, the pool from its token count (or blocks x 16)
    times the exact KV bytes per token is within 0.01 GiB or 1.5% of the printed GiB figure;
    logs that print only the count enter the fit through it."""
    import numpy as np

    from fitting.overhead.observations import _resolve_models, _str, _kv_from_tokens

    frame = load_profiles(ROOT / "profiles").to_frame()
    v = frame[frame["framework"] == "vllm"].reset_index(drop=True)
    derived = _kv_from_tokens(v, _resolve_models(_str(v, "model_id")))
    printed = v["kv_cache_gib"].to_numpy(dtype=float)
    both = np.isfinite(derived) & np.isfinite(printed)
    assert both.sum() >= 30
    err = np.abs(derived[both] - printed[both])
    assert np.all((err <= 0.01) | (err <= 0.015 * printed[both])), err
    t = build_observations(frame, "vllm").table
    assert t.response_form.str.endswith("_tokens").sum() >= 4


def test_multimodal_starts_stay_out_of_the_fit_and_the_estimate_says_so(table):
    """A multimodal model's profile run encodes dummy images through its tower, which the
    physics does not model: such starts stay out of the vLLM fit with that reason, and an
    estimate for such a model warns."""
    from fitting.estimator import Estimator

    frame = load_profiles(ROOT / "profiles").to_frame()
    obs = build_observations(frame, "vllm")
    why = {e["profile_id"]: e["reason"] for e in obs.excluded}
    for pid in ("vllm-qwen-qwen2-5-vl-3b-instruct-fc7502ee67", "vllm-opengvlab-internvl3-78b-c1387ab0ac"):
        assert pid not in table.index and why[pid].startswith("multimodal model")
    est = Estimator.from_file(ROOT / "fitted_params" / "vllm")
    out = est.query("Qwen/Qwen2.5-VL-3B-Instruct", gpu="L4")
    assert any(w.startswith("multimodal model") for w in out["warnings"])
    # the dummy image's size where the family's processor is known
    assert any("its largest image, 16,384 tokens" in w for w in out["warnings"])
    assert not any(w.startswith("multimodal model") for w in est.query("Qwen/Qwen2.5-7B-Instruct", gpu="L4")["warnings"])


def test_gemma4_cold_compile_starts_leave_the_fit_and_the_eager_one_stays():
    """Gemma-4 26B-A4B FP8 on 0.29: the nine compiled starts are fresh pods whose logs show a cold
    torch.compile, and their printed peaks hold 0.4-1.2 GiB above the profile run's mechanics
    (the compiler's temporaries, vllm#54122): they leave the fit with that reason; the eager
    start, which compiles nothing and matches the physics, stays in."""
    frame = load_profiles(ROOT / "profiles").to_frame()
    obs = build_observations(frame, "vllm")
    out = {e["profile_id"]: e["reason"] for e in obs.excluded if "gemma-4-26b-a4b-it-fp8" in e["profile_id"]}
    assert len(out) == 9 and all(why.startswith("cold torch.compile") for why in out.values())
    kept = [pid for pid in obs.table.profile_id if "gemma-4-26b-a4b-it-fp8" in pid]
    assert kept == ["vllm-redhatai-gemma-4-26b-a4b-it-fp8-dynamic-8aba82786d"]
    assert obs.table.set_index("profile_id").loc[kept[0], "sampler_regime"] == SAMPLER_REGIME_CODES["v2_logits"]
