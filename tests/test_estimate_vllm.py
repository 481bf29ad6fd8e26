"""The answers a vLLM user needs, on the committed coefficient files and a real start-up log.

Checked against what vLLM itself printed: llm-d-planner's v0.19.0 accuracy report tabulates a
Llama-3.1-8B-Instruct start on an H100 (79.19 GiB) at gpu_memory_utilization 0.95,
max_model_len 8192, max_num_batched_tokens 8192: "GPU KV cache size: 476,000 tokens"
(profiles/public/vllm, source
https://github.com/llm-d-incubation/llm-d-planner/blob/main/docs/accuracy/vllm-v0.19.0-accuracy-report.md).
"""

import json
from pathlib import Path

import pytest

from fitting import estimate
from fitting.estimator import Estimator

ROOT = Path(__file__).resolve().parents[1]
LOGGED_POOL_TOKENS = 476_000
POOL_RTOL = 0.05


@pytest.fixture(scope="module")
def vllm():
    return Estimator.from_file(ROOT / "fitted_params" / "vllm")


def test_llama_8b_with_defaults_starts_on_one_h100(vllm):
    r = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100")
    assert r["settings"]["max_model_len"] == 131072 and r["settings"]["concurrency"] == 1
    assert r["settings"]["batch_size"] == 1024  # vLLM's max_num_seqs default on a >= 70 GiB GPU
    assert r["engine_start_probability"] >= 0.99 and r["engine_starts"]
    # one 131072-token sequence is 16 GiB of KV: the answer charges one sequence, not max_num_seqs of them
    assert r["kv_cache_gib"] == pytest.approx(16.0, rel=1e-9)
    assert r["max_model_len_that_starts"] == 131072
    assert r["max_concurrency_at_max_model_len"] == pytest.approx(r["kv_pool_tokens"] / 131072, abs=0.01)
    assert 0 < r["min_gpu_memory_utilization_to_start"] < 0.9


def test_pool_matches_what_vllm_logged(vllm):
    r = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100", gpu_memory_gib=79.19,
                   gpu_memory_utilization=0.95, max_model_len=8192, max_num_batched_tokens=8192,
                   framework_version="0.19.0")
    assert r["kv_pool_tokens"] == pytest.approx(LOGGED_POOL_TOKENS, rel=POOL_RTOL)
    assert r["kv_pool_tokens_lower"] <= LOGGED_POOL_TOKENS <= r["kv_pool_tokens_upper"]


@pytest.mark.parametrize("model, quantization, starts_at", [
    ("Qwen/Qwen3-0.6B", None, (1, 2, 4)),
    ("meta-llama/Llama-3.1-70B-Instruct", "fp8", (2, 4)),
])
def test_small_and_large_models_over_tp(vllm, model, quantization, starts_at):
    """A 0.6B model starts on one H100 at every tp; a 70B FP8 model (68 GiB of weights)
    does not start at tp 1 with its 131072-token context, and does at tp 2 and 4."""
    prev = None
    for tp in (1, 2, 4):
        r = vllm.query(model, gpu="H100", tp=tp, quantization=quantization)
        assert r["engine_starts"] == (tp in starts_at), (tp, r["engine_start_probability"])
        if prev is not None:
            assert r["weights_gib"] == pytest.approx(prev["weights_gib"] / 2, rel=0.02)
            assert r["kv_pool_tokens"] > prev["kv_pool_tokens"]
        prev = r


def test_workload_is_separate_from_max_num_seqs(vllm):
    base = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100", input_len=2000, output_len=500)
    busy = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100", input_len=2000, output_len=500,
                      concurrency=64)
    assert busy["kv_cache_gib"] == pytest.approx(64 * base["kv_cache_gib"], rel=0.01)
    assert busy["non_kv_gib"] == base["non_kv_gib"]  # max_num_seqs, not the workload, sizes the engine
    assert busy["workload"]["concurrency"] == 64 and busy["workload"]["tokens_per_request"] == 2500
    assert busy["max_batch_size"] >= 64  # the pool holds at least the stated workload


def test_enforce_eager_has_no_cuda_graphs(vllm):
    r = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100", enforce_eager=True)
    assert r["cuda_graph_gib"] is None
    with_graphs = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100")
    assert with_graphs["cuda_graph_gib"] > 0


def test_defaults_are_stated_with_and_without_a_gpu(vllm):
    bare = vllm.predict("meta-llama/Llama-3.1-8B-Instruct")
    assert "GPU is not known" in bare.defaults_applied["batch_size"]
    on_h100 = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100")
    assert "default on this GPU" in on_h100["defaults_applied"]["batch_size"]


def test_cli_flags(capsys):
    rc = estimate.main(["--framework", "vllm", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100",
                        "--max-num-seqs", "256", "--concurrency", "8", "--input-len", "4000", "--output-len", "1000",
                        "--vllm-version", "0.11.0", "--enforce-eager", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert r["settings"]["batch_size"] == 256 and r["settings"]["concurrency"] == 8
    assert r["settings"]["framework_version"] == "0.11.0" and r["settings"]["enforce_eager"] is True
    rc = estimate.main(["--framework", "transformers", "--model", "meta-llama/Llama-3.1-8B", "--concurrency", "4",
                        "--input-len", "10"])
    err = capsys.readouterr().err
    assert rc == 2 and "KV pool" in err


def test_the_version_selects_the_model_runner_and_sampler_path(vllm):
    """vLLM's own default by release (fitting.physics.vllm): the V1 runner's Triton sampler at
    0.19, the V2 runner's logits-only dummy sampler at 0.30 (no fp32 copy, no top-k/top-p: a
    smaller activation physics at the same settings), its FlashInfer warm-up pass at 0.34."""
    kw = dict(gpu="L40S", batch_size=256, max_num_batched_tokens=2048, max_model_len=4096)  # batch_size: max_num_seqs
    runs = {v: vllm.query("Qwen/Qwen2.5-7B-Instruct", framework_version=v, **kw) for v in ("0.19.0", "0.30.0", "0.34.0")}
    notes = {v: r["defaults_applied"]["profile_run"] for v, r in runs.items()}
    assert notes["0.19.0"].startswith("V1 model runner") and "v1_triton" in notes["0.19.0"]
    assert notes["0.30.0"].startswith("V2 model runner") and "v2_logits" in notes["0.30.0"]
    assert notes["0.34.0"].startswith("V2 model runner") and "v1_flashinfer" in notes["0.34.0"]
    act = {v: r["activations_gib"] for v, r in runs.items()}
    assert act["0.30.0"] < act["0.34.0"] < act["0.19.0"]


def test_first_cold_compile_start_has_a_smaller_pool(vllm):
    """A compiled start with an empty torch.compile cache counts the compiler's temporaries as
    activation memory (vllm#54122): the answer gives the pool of such a first start, smaller by
    COLD_COMPILE_EXCESS_MAX_GIB of KV; an eager start compiles nothing and gets no such line."""
    from fitting.estimator.answer import answer
    from fitting.physics.vllm import COLD_COMPILE_EXCESS_MAX_GIB
    for model, gpu in (("meta-llama/Llama-3.1-8B-Instruct", "H100"), ("Qwen/Qwen2.5-7B-Instruct", "L4")):
        r = answer(vllm, model, gpu=gpu, max_model_len=8192, framework_version="0.29.0", gpu_memory_utilization=0.9)
        cold = r["first_start_cold_compile"]
        assert cold["excess_upper_gib"] == COLD_COMPILE_EXCESS_MAX_GIB
        assert 0 < cold["kv_pool_tokens"] < r["kv_pool_tokens"]
        lost = (r["kv_pool_tokens"] - cold["kv_pool_tokens"]) * r["kv_bytes_per_token"]
        # the pool rounds down to whole blocks of 16 tokens
        assert abs(lost / 2**30 - COLD_COMPILE_EXCESS_MAX_GIB) <= 16 * r["kv_bytes_per_token"] / 2**30, model
    # 0.34's extensible KV cache keeps max(1 GiB, 0.75 x the profiled peak) free besides the peak:
    # a cold start's larger peak also widens that margin
    r34 = answer(vllm, "meta-llama/Llama-3.1-8B-Instruct", gpu="H100", framework_version="0.34.0")
    cold34 = r34["first_start_cold_compile"]
    assert r34["activations_gib"] * 0.75 > 1.0
    assert cold34["pool_loss_gib"] == pytest.approx(1.75 * COLD_COMPILE_EXCESS_MAX_GIB)
    lost34 = (r34["kv_pool_tokens"] - cold34["kv_pool_tokens"]) * r34["kv_bytes_per_token"] / 2**30
    assert abs(lost34 - cold34["pool_loss_gib"]) <= 16 * r34["kv_bytes_per_token"] / 2**30
    eager = answer(vllm, "Qwen/Qwen2.5-7B-Instruct", gpu="L4", max_model_len=8192, framework_version="0.29.0",
                   enforce_eager=True)
    assert "first_start_cold_compile" not in eager
    v0 = answer(vllm, "Qwen/Qwen2.5-7B-Instruct", gpu="L4", max_model_len=8192, framework_version="0.6.4")
    assert "first_start_cold_compile" not in v0


def test_a_start_that_fits_warm_may_not_fit_cold(vllm):
    """Just above the smallest utilization that starts, the engine starts with a warm compile
    cache; a first start, whose profiled peak holds the compile excess, does not."""
    from fitting.estimator.answer import answer
    kw = dict(gpu="L4", max_model_len=32768, framework_version="0.29.0")
    u_min = answer(vllm, "Qwen/Qwen2.5-7B-Instruct", **kw)["min_gpu_memory_utilization_to_start"]
    r = answer(vllm, "Qwen/Qwen2.5-7B-Instruct", gpu_memory_utilization=round(u_min + 0.01, 3), **kw)
    assert r["engine_starts"] and r["engine_start_probability"] >= 0.95
    assert r["first_start_cold_compile"]["engine_start_probability"] < 0.95
    roomy = answer(vllm, "Qwen/Qwen2.5-7B-Instruct", gpu_memory_utilization=0.95, **kw)
    assert roomy["first_start_cold_compile"]["engine_start_probability"] > 0.99
