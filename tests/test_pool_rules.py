"""How preallocating engines size their KV pool (fitting.estimator.pool), and the estimator's
pool answers for TGI and TensorRT-LLM through the same code path as vLLM and SGLang.

The TensorRT-LLM worked examples are real start-up logs of the committed profiles; TGI's rule
is checked against the arithmetic of its warmup() (no TGI log with figures is in the data)."""

import math
from pathlib import Path

import pytest

from fitting.estimator import Estimator
from fitting.estimator.pool import ENGINE_TOKEN_BUDGET_DEFAULT, pool_rule, tgi_wiggle_room
from fitting.physics.tgi import launcher_defaults

GIB = 2**30
ROOT = Path(__file__).resolve().parents[1]


def _load(fw):
    return Estimator.from_file(ROOT / "fitted_params" / fw)


def _pool(rule, G, non_kv):
    return rule.scale * max(rule.budget_fraction * G - non_kv, 0.0)


@pytest.mark.parametrize("total, available, fraction, printed", [
    (31.84, 17.83, 0.9, 16.05),   # Llama-3.1-8B, RTX 5090: "total: 31.84 GiB, available: 17.83 GiB" ... 16.05 GiB
])
def test_trtllm_pool_is_the_fraction_of_the_memory_left_free(total, available, fraction, printed):
    """TensorRT-LLM prints the memory it measured and the pool it allocated: the pool is the
    fraction of what is free after the weights and activations (not of the GPU)."""
    rule = pool_rule("trtllm", fraction)
    assert round(_pool(rule, total, total - available), 2) == printed
    # the same non-KV under vLLM's form (u x G - non-KV) would give a pool 1.4 GiB smaller
    assert _pool(pool_rule("vllm", fraction), total, total - available) < printed - 1.0


@pytest.mark.parametrize("fraction, available, printed", [(0.25, 8.73, 2.18), (0.45, 16.25, 7.31)])
def test_trtllm_qwen_logs(fraction, available, printed):
    """Qwen2.5-0.5B/1.5B logs: 'fraction 0.25 x 8.73 GiB avail' -> 2.18 GiB, 0.45 x 16.25 -> 7.31."""
    rule = pool_rule("trtllm", fraction)
    assert rule.scale * (rule.budget_fraction * 100.0 - (100.0 - available)) == pytest.approx(printed, abs=0.005)


def test_tgi_wiggle_room_and_form_by_release():
    """TGI_WIGGLE_ROOM defaults (models/globals.py) and the v3.0.0 change of form (a04356fb):
    3.x fills the GPU up to cuda_memory_fraction x wiggle of its total; 2.x keeps wiggle of the
    free memory within cuda_memory_fraction."""
    assert [tgi_wiggle_room(v) for v in ("3.3.7", "3.3.0", "3.2.3", "3.1.0", "3.0.2", "2.4.1", "2.3.1", "2.2.0")] \
        == [0.90, 0.90, 0.93, 0.93, 0.95, 0.90, 0.95, 0.95]
    G, nk = 80.0, 20.0
    new = pool_rule("tgi", 1.0, "3.3.7")
    assert (new.kind, new.budget_fraction, new.scale) == ("tgi3", 0.9, 1.0)
    assert _pool(new, G, nk) == pytest.approx(0.9 * 80 - 20)  # free - (1 - f w) G, after the warm-up peak
    old = pool_rule("tgi", 1.0, "2.4.1")
    assert _pool(old, G, nk) == pytest.approx(0.9 * (80 - 20))
    assert pool_rule("tgi", 0.5, None).budget_fraction == pytest.approx(0.45)  # newest known release
    with pytest.raises(ValueError, match="does not preallocate"):
        pool_rule("llamacpp", 0.9)


@pytest.mark.parametrize("framework, version", [("vllm", None), ("tgi", "3.3.7"), ("tgi", "2.4.1"),
                                                ("trtllm", None)])
def test_min_fraction_is_the_smallest_setting_whose_pool_holds_the_kv(framework, version):
    G, nk, kv = 79.19, 17.0, 30.0
    f = float(pool_rule(framework, 1.0, version).min_fraction(nk, kv, G))
    at = pool_rule(framework, f, version)
    below = pool_rule(framework, f - 0.002, version)
    assert _pool(at, G, nk) >= kv - 1e-9 > _pool(below, G, nk)
    assert math.isnan(float(pool_rule(framework, 1.0, version).min_fraction(nk, 200.0, G)))


@pytest.fixture(scope="module")
def answers():
    out = {}
    for fw in ("tgi", "trtllm", "sglang"):
        est = _load(fw)
        out[fw] = (est, est.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100"))
    return out


@pytest.mark.parametrize("fw", ["tgi", "trtllm"])
def test_estimator_pool_answers_follow_the_engines_rule(answers, fw):
    """The pool in tokens is the rule applied to the estimator's own non-KV (median), whole
    tokens of the per-GPU KV bytes; the activation part is that of the engine's own prefill
    (its token budget default), not of a 131,072-token context."""
    est, r = answers[fw]
    rule = est.pool_rule(r["gpu_memory_utilization"])
    assert r["pool_budget_fraction"] == pytest.approx(float(rule.budget_fraction))
    assert r["pool_scale"] == pytest.approx(float(rule.scale))
    pool_gib = float(rule.scale) * (float(rule.budget_fraction) * r["gpu_memory_gib"] - r["non_kv_gib"])
    block = 32 if fw == "trtllm" else 1  # TensorRT-LLM's tokens_per_block
    assert r["kv_pool_tokens"] % block == 0
    assert r["kv_pool_tokens"] == pytest.approx(pool_gib * GIB / r["kv_bytes_per_token"], abs=block + 1)
    assert r["kv_pool_tokens_lower"] < r["kv_pool_tokens"] < r["kv_pool_tokens_upper"]
    budget = (launcher_defaults(131072)["max_batch_prefill_tokens"] if fw == "tgi"
              else ENGINE_TOKEN_BUDGET_DEFAULT[fw][0])
    assert r["settings"]["max_num_batched_tokens"] == budget
    assert r["activations_gib"] < 1.0 and r["engine_starts"] is None  # unfitted: no calibrated answer
    assert r["max_concurrency_at_max_model_len"] == pytest.approx(r["kv_pool_tokens"] / 131072, abs=0.011)


def test_trtllm_and_tgi_differ_from_the_static_form(answers):
    """Same model and GPU: TGI 3.3 fills 0.9 G; TensorRT-LLM keeps 10% of the free memory."""
    tgi, trt = answers["tgi"][1], answers["trtllm"][1]
    assert tgi["pool_budget_fraction"] == pytest.approx(0.9) and tgi["pool_scale"] == 1.0
    assert trt["pool_budget_fraction"] == 1.0 and trt["pool_scale"] == pytest.approx(0.9)
    assert "TGI_WIGGLE_ROOM" in tgi["pool_rule"] and "free_gpu_memory_fraction" in trt["pool_rule"]


def test_fit_probability_uses_the_scaled_budget():
    """TensorRT-LLM: a workload fits when non-KV + KV / f <= G; the probability falls as the
    requests grow and is the same function the pool answer inverts."""
    est = _load("trtllm")
    kw = dict(gpu_memory_gib=79.19, gpu_memory_utilization=0.9, max_model_len=131072, input_len=131072,
              output_len=0, max_num_batched_tokens=8192)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    p = [float(est.fit_probability(model, concurrency=n, **kw)) for n in (1, 3, 4)]
    assert p[0] > 0.99 and p[2] < 0.01 and p[0] >= p[1] >= p[2]
    # 16 GiB of KV per request: 3 need 48 / 0.9 = 53.3 GiB beside the ~17 GiB non-KV (fits), 4 need 71.1 (no)
    tokens = est.kv_pool_tokens(model, gpu_memory_gib=79.19, gpu_memory_utilization=0.9, concurrency=1,
                                max_model_len=131072, max_num_batched_tokens=8192)[0]
    assert 3 * 131072 < tokens < 4 * 131072
    with pytest.raises(ValueError, match="preallocate a KV pool"):
        _load("llamacpp").kv_pool_tokens("meta-llama/Llama-3.1-8B-Instruct", gpu_memory_gib=80.0)
