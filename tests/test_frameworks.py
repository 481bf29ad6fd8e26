"""vLLM's default settings (:func:`fitting.data.frameworks.vllm_defaults`) against its source.

Worked examples from ``vllm/engine/arg_utils.py`` (``EngineArgs._set_default_args*``,
``get_batch_defaults``) and ``SchedulerConfig`` at the versions named in each test.
"""

from __future__ import annotations

import pytest

from fitting.data.frameworks import VLLM_NEWEST_KNOWN, vllm_default_max_num_seqs, vllm_defaults
from fitting.physics.vllm import VLLM_NEWEST_VERIFIED, parse_version

H100 = {"gpu_name": "NVIDIA H100 80GB HBM3", "gpu_memory_gib": 79.19}
A100_80 = {"gpu_name": "NVIDIA A100-SXM4-80GB", "gpu_memory_gib": 79.15}
L4 = {"gpu_name": "NVIDIA L4", "gpu_memory_gib": 22.05}


def _pair(d):
    return d["max_num_seqs"], d["max_num_batched_tokens"]


def test_newest_known_version_is_stated():
    assert parse_version(VLLM_NEWEST_KNOWN) == VLLM_NEWEST_VERIFIED >= (0, 19, 0)


@pytest.mark.parametrize("version", ["0.9.2", "0.10.1", "0.15.0", "0.19.0", "0.27.1"])
def test_v1_server_and_llm_class_by_gpu_tier(version):
    # >= 70 GiB and not an A100: 1024 seqs, 8192 tokens (serve) / 16384 (LLM class)
    assert _pair(vllm_defaults(version, **H100)) == (1024, 8192)
    assert _pair(vllm_defaults(version, entry_point="llm", **H100)) == (1024, 16384)
    # below 70 GiB: 256 seqs, 2048 (serve) / 8192 (LLM class)
    assert _pair(vllm_defaults(version, **L4)) == (256, 2048)
    assert _pair(vllm_defaults(version, entry_point="llm", **L4)) == (256, 8192)
    # A100 80GB is excluded from the large tier from 0.9.0
    assert _pair(vllm_defaults(version, **A100_80)) == (256, 2048)


def test_v1_early_releases():
    # 0.8.0-0.8.4: 1024 seqs on every GPU; 8192 tokens only for GPUs named H100/H200
    assert _pair(vllm_defaults("0.8.2", **L4)) == (1024, 2048)
    assert _pair(vllm_defaults("0.8.2", **H100)) == (1024, 8192)
    # 0.8.5: by memory, without the A100 exception (corrects "A100 excluded from 0.10")
    assert _pair(vllm_defaults("0.8.5", **A100_80)) == (1024, 8192)
    assert _pair(vllm_defaults("0.9.0", **A100_80)) == (256, 2048)


def test_v1_large_memory_tier_and_caps():
    # 0.28+: >= 160 GiB -> 1024 / 16384 for both entry points
    b200 = {"gpu_name": "NVIDIA B200", "gpu_memory_gib": 178.4}
    assert _pair(vllm_defaults("0.28.0", **b200)) == (1024, 16384)
    assert _pair(vllm_defaults("0.27.1", **b200)) == (1024, 8192)
    # 0.12+: max_num_seqs <= max_num_batched_tokens <= max_num_seqs * max_model_len
    assert _pair(vllm_defaults("0.19.0", max_model_len=4, **L4)) == (256, 1024)
    d = vllm_defaults("0.19.0", **H100)
    assert d["gpu_memory_utilization"] == 0.9 and d["block_size"] == 16 and d["enable_chunked_prefill"] is True
    assert "H100" not in d["rule"] and "1024" in d["rule"] and "vllm serve" in d["rule"]


def test_v0_defaults():
    # V0: 256 seqs; without chunked prefill max(max_model_len, 2048); chunked: 512 up to 0.6.4, then 2048
    assert _pair(vllm_defaults("0.6.4", engine="v0", max_model_len=8192)) == (256, 8192)
    assert _pair(vllm_defaults("0.6.4", engine="v0", max_model_len=1024)) == (256, 2048)
    assert _pair(vllm_defaults("0.6.3", engine="v0", max_model_len=131072)) == (256, 512)
    assert _pair(vllm_defaults("0.7.2", engine="v0", max_model_len=131072)) == (256, 2048)
    assert vllm_defaults("0.7.2", engine="v0", max_model_len=131072, sliding_window=True)["max_num_batched_tokens"] \
        == 131072
    assert vllm_defaults("0.7.2", engine="v0", max_model_len=4096, multimodal=True)["max_num_batched_tokens"] == 5120
    d = vllm_defaults("0.6.4", engine="v0")
    assert d["max_num_batched_tokens"] is None and "needs max_model_len" in d["rule"]
    assert vllm_defaults("0.7.3")["engine"] == "v0" and vllm_defaults("0.8.0")["engine"] == "v1"


def test_bad_entry_point():
    with pytest.raises(ValueError):
        vllm_defaults("0.19.0", entry_point="grpc")


def test_legacy_helper_is_unchanged():
    # callers (estimator/answer.py, tests/test_overhead.py) keep their answers
    assert vllm_default_max_num_seqs(79.19, "NVIDIA H100 80GB HBM3", "v1", "0.10.1") == 1024
    assert vllm_default_max_num_seqs(None, None, None, None) == 256


# --------------------------------------------------------------------------- settings read from public-log records

def test_settings_from_vllm_log_lines():
    from fitting.data.vllm_settings import vllm_settings_from_record as f

    # topk_topp_sampler.py log lines
    assert f({"evidence": "INFO ... Using FlashInfer for top-p & top-k sampling."})["sampler_flashinfer"] is True
    assert f({"evidence": "FlashInfer is available, but it is not enabled. Falling back"})["sampler_flashinfer"] is False
    assert f({"evidence": "model weights take 1GiB"})["sampler_flashinfer"] is None
    # custom_all_reduce.py warnings
    r = f({"evidence": "Custom allreduce is disabled because your platform lacks GPU P2P capability or P2P test "
                       "failed. To silence this warning, specify disable_custom_all_reduce=True explicitly."})
    assert r["custom_all_reduce"] is False and r["p2p"] is False
    r = f({"evidence": "Custom allreduce is disabled because it's not supported on more than two PCIe-only GPUs."})
    assert r["custom_all_reduce"] is False and r["interconnect"] == "pcie"
    assert f({"gpu_name": "NVIDIA H100 80GB HBM3 SXM5"})["interconnect"] == "nvlink"
    assert f({"notes": "4 Ray workers on 4 different nodes (1 GPU each)"})["same_node"] is False


def test_settings_from_the_shared_records():
    import json
    from pathlib import Path

    from fitting.data.vllm_settings import vllm_settings_from_record as f

    src = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "public-logs" / "vllm.jsonl"
    if not src.exists():
        pytest.skip("../shared not present")
    records = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    got = [f(r) for r in records]
    assert all(set(g) == set(got[0]) for g in got)
    # the dataset's own wording: custom all-reduce disabled in several records, a vllm-openai image, offload
    assert sum(g["custom_all_reduce"] is False for g in got) >= 3
    assert any(g["docker_image"] == "vllm/vllm-openai:v0.8.5" for g in got)
    assert any(g["cpu_offload_gb"] == 2.0 for g in got)
    assert any(g["sampler_flashinfer"] is False for g in got)
