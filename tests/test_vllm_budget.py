"""vLLM's default gpu_memory_utilization by version and where its CUDA graphs sit.

Facts read in vLLM's sdists (``vllm/config/cache.py``, ``vllm/v1/worker/gpu_worker.py``): the
default utilization is 0.9 up to 0.19, 0.92 from 0.20.0 and 1.0 from 0.34.0 with the
extensible KV cache; from 0.20 the CUDA-graph memory is profiled and subtracted before the
pool is sized, so the graphs sit inside ``u G``, not in the rest of the GPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fitting.data.frameworks import vllm_default_utilization, vllm_defaults
from fitting.estimator import Estimator
from fitting.ingest import parse_log

ROOT = Path(__file__).resolve().parents[1]
_GIB = float(2**30)


@pytest.mark.parametrize("version, u", [("0.6.4", 0.9), ("0.19.1", 0.9), ("0.20.0", 0.92), ("0.22.1", 0.92),
                                        ("0.33.0", 0.92), ("0.34.0", 1.0)])
def test_default_utilization_follows_the_version(version, u):
    assert vllm_default_utilization(version) == u
    assert vllm_defaults(version, gpu_name="H100", gpu_memory_gib=79.19)["gpu_memory_utilization"] == u


def _start(version, extra=""):
    return (f"INFO 06-05 12:00:00 [api_server.py:1] vLLM API server version {version}\n"
            f"INFO 06-05 12:00:01 [utils.py:1] non-default args: {{'model': 'Qwen/Qwen3-8B'{extra}}}\n"
            "INFO 06-05 12:00:40 [gpu_worker.py:1] Available KV cache memory: 50.00 GiB\n"
            "INFO 06-05 12:00:40 [kv_cache_utils.py:1] GPU KV cache size: 364,080 tokens\n")


def test_an_unlisted_utilization_is_the_default_of_the_printed_version():
    (old,) = parse_log(_start("0.19.1"), framework="vllm")
    (new,) = parse_log(_start("0.22.1"), framework="vllm")
    (given,) = parse_log(_start("0.22.1", ", 'gpu_memory_utilization': 0.8"), framework="vllm")
    assert old["engine_settings"]["gpu_memory_utilization"] == 0.9
    assert new["engine_settings"]["gpu_memory_utilization"] == 0.92
    assert given["engine_settings"]["gpu_memory_utilization"] == 0.8


def test_the_cuda_graph_profiling_line_gives_the_utilization():
    text = _start("0.22.1") + (
        "INFO 06-05 12:00:40 [gpu_worker.py:481] CUDA graph memory profiling is enabled (default since v0.21.0). "
        "The current --gpu-memory-utilization=0.9500 is equivalent to --gpu-memory-utilization=0.9382 without "
        "CUDA graph memory profiling.\n")
    (p,) = parse_log(text, framework="vllm")
    assert p["engine_settings"]["gpu_memory_utilization"] == 0.95


@pytest.fixture(scope="module")
def vllm():
    return Estimator.from_file(ROOT / "fitted_params" / "vllm")


def test_graphs_inside_the_budget_from_0_20(vllm):
    kw = dict(gpu_memory_gib=79.19, gpu_memory_utilization=0.9, max_model_len=32768, batch_size=256,
              max_num_batched_tokens=8192)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    for version, inside in (("0.19.0", False), ("0.22.1", True)):
        r = vllm.query(model, framework_version=version, **kw)
        cg = r["cuda_graph_gib"]
        assert cg is not None and cg > 0
        pool_gib = 0.9 * 79.19 - r["non_kv_gib"] - (cg if inside else 0.0)
        expected = math.floor(pool_gib * _GIB / r["kv_bytes_per_token"] / 16) * 16
        assert abs(r["kv_pool_tokens"] - expected) <= 16, (version, r["kv_pool_tokens"], expected)
    # same settings otherwise: the 0.20+ pool is smaller by about the graphs' tokens
    a = vllm.query(model, framework_version="0.19.0", **kw)
    b = vllm.query(model, framework_version="0.22.1", **kw)
    assert b["kv_pool_tokens"] < a["kv_pool_tokens"]


def test_newest_default_is_the_extensible_cache_budget(vllm):
    r = vllm.query("meta-llama/Llama-3.1-8B-Instruct", gpu="H100")
    assert r["settings"]["framework_version"] == "0.34.0" and r["gpu_memory_utilization"] == 1.0
    # with u = 1 the graphs must fit in the budget, never in a (1 - u) G = 0 rest
    assert r["engine_start_probability"] > 0.9


def test_extensible_cache_keeps_its_margin_free(vllm):
    """0.34: available = min(u G - N, free - margin) - peak with margin = max(1 GiB, 0.75 x the
    activation peak) (v1/worker/extensible_kv_cache.py): at u = 1 the pool is G - margin - non-KV
    - graphs; at u = 0.9 on an 80 GiB card the requested budget binds, as before."""
    model, G = "meta-llama/Llama-3.1-8B-Instruct", 79.19
    kw = dict(gpu_memory_gib=G, max_model_len=32768, batch_size=256, max_num_batched_tokens=8192,
              framework_version="0.34.0")
    r = vllm.query(model, **kw)
    assert r["gpu_memory_utilization"] == 1.0
    margin = max(1.0, 0.75 * r["activations_gib"])
    pool = G - margin - r["non_kv_gib"] - r["cuda_graph_gib"]
    assert abs(r["kv_pool_tokens"] - math.floor(pool * _GIB / r["kv_bytes_per_token"] / 16) * 16) <= 16
    r9 = vllm.query(model, gpu_memory_utilization=0.9, **kw)
    pool9 = 0.9 * G - r9["non_kv_gib"] - r9["cuda_graph_gib"]
    assert abs(r9["kv_pool_tokens"] - math.floor(pool9 * _GIB / r9["kv_bytes_per_token"] / 16) * 16) <= 16


def test_continued_commands_banner_version_and_repeated_lines():
    """SIMULATED start in the formats of real 0.27-0.29 logs: a backslash-continued serve
    command, the ASCII banner with the version, the pool printed twice by one start, and the
    V2 runner's profiling and capture graph lines (the capture, printed last, is kept)."""
    text = ("vllm serve Qwen/Qwen3-8B \\\n    --tensor-parallel-size 2 \\\n    --gpu-memory-utilization 0.95 \\\n"
            "    --max-num-seqs 64\n"
            "(APIServer pid=1) INFO 08-22 20:19:51 [api_utils.py:345]  \u2584\u2584 \u2584\u2588 vLLM version 0.27.1\n"
            "(EngineCore pid=2) INFO 08-22 20:20:51 [gpu_worker.py:1] Available KV cache memory: 50.00 GiB\n"
            "(EngineCore pid=2) INFO 08-22 20:20:51 [kv_cache_utils.py:1] GPU KV cache size: 364,080 tokens\n"
            "(EngineCore pid=2) INFO 08-22 20:20:51 [kv_cache_utils.py:1] GPU KV cache size: 364,080 tokens\n"
            "(EngineCore pid=2) INFO 08-22 20:21:00 [model_runner.py:960] Graph capturing finished in 16 secs, "
            "took 0.46 GiB\n"
            "(EngineCore pid=2) INFO 08-22 20:21:30 [gpu_model_runner.py:1] Graph capturing finished in 6 secs, "
            "took 0.40 GiB\n")
    (p,) = parse_log(text, framework="vllm")
    assert p["framework_version"] == "0.27.1" and p["parallel"]["tp"] == 2
    assert p["engine_settings"]["gpu_memory_utilization"] == 0.95 and p["workload"]["max_num_seqs"] == 64
    assert p["measured"]["kv_cache_tokens"] == 364080 and p["measured"]["cuda_graph_gib"] == 0.40


def test_a_named_but_unsized_gpu_gets_its_memory_tier_default():
    """A start on an H200 whose log names the GPU but not its memory: vLLM 0.11's max_num_seqs
    default there is 1024 (>= 70 GiB tier), not the 256 of smaller cards. With 1024 sequences the
    sort sampler's temporaries (about 4.6 GiB for Llama-3's 128k vocabulary) explain the printed
    non-KV of 19.85 GiB (0.9 x 139.8 GiB - 105.97 GiB of pool)."""
    from fitting.data.profiles import load_profiles
    from fitting.overhead.observations import build_observations

    frame = load_profiles(ROOT / "profiles").to_frame()
    obs = build_observations(frame[frame.framework == "vllm"], "vllm")
    t = obs.table.set_index("profile_id")
    pid = "vllm-meta-llama-meta-llama-3-8b-instruct-351d23831a"
    assert t.loc[pid, "batch_defaulted"] and t.loc[pid, "batch_size"] == 1024
    i = list(obs.table.profile_id).index(pid)
    physics_non_kv = obs.features["weights_gib"][i] + obs.features["activations_gib"][i]
    assert physics_non_kv == pytest.approx(t.loc[pid, "y_gib"], rel=0.05)


def test_the_gpu_is_named_from_the_fused_moe_file_or_the_bfloat16_warning():
    """SIMULATED starts with two real line formats that name the GPU: the fused-MoE tuning file
    vLLM looks up and the warning a pre-Ampere card prints."""
    from fitting.data.gpus import find_gpu

    moe = ("INFO 08-22 20:19:51 [api_server.py:1] vLLM API server version 0.12.0\n"
           "WARNING 08-22 20:20:00 [fused_moe.py:1] Config file not found at [/x/configs/E=128,N=768,"
           "device_name=NVIDIA_RTX_PRO_6000_Blackwell_Server_Edition.json]\n"
           "INFO 08-22 20:20:51 [gpu_worker.py:1] Available KV cache memory: 50.00 GiB\n")
    t4 = ("WARNING 05-01 10:00:00 [model.py:1963] Your device 'Tesla T4' (with compute capability 7.5) doesn't "
          "support torch.bfloat16. Falling back to torch.float16 for compatibility.\n"
          "INFO 05-01 10:00:51 [gpu_worker.py:1] Available KV cache memory: 5.00 GiB\n")
    (a,) = parse_log(moe, framework="vllm")
    (b,) = parse_log(t4, framework="vllm")
    assert a["gpu"]["name"] == "NVIDIA RTX PRO 6000 Blackwell Server Edition"
    assert find_gpu(a["gpu"]["name"]).name == "RTX-PRO-6000"
    assert b["gpu"]["name"] == "Tesla T4" and find_gpu(b["gpu"]["name"]).name == "T4"
