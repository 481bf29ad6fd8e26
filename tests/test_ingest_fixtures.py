"""Every fixture log parses to the figures of the harvested public record it mirrors.

The expected values are not written here: each case names the record in
``../shared/data/public-logs/*.jsonl`` by its source (URL or ref) and a piece of its
evidence, and the test compares every figure the record holds with the parsed profile,
converted exactly to GiB. A field the log cannot give (the record took it from the
surrounding text, or the line is cut in the source) is listed with the reason.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pytest

from fitting.ingest import NoMeasurementsError, parse_log
from fitting.units import UNIT_BYTES

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
PUBLIC_LOGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "public-logs"

V = "vllm.jsonl"
O = "other_frameworks.jsonl"
GH = "https://github.com/"
NOT_IN_LOG = "stated in the surrounding text of the source, not in the log lines"
DEFAULT_TP = "vLLM's default tp=1 is not printed in these lines"



def case(records, skips=None, aliases=None, evidence=None):
    """One fixture: the records it mirrors (in profile order) as ``(file, source, evidence piece)``,
    ``{start: {field: why it is not compared}}``, ``{record field: profile quantity}`` where the
    record files a figure under another name, and ``{profile field: regex}`` for figures the
    record keeps only in its evidence text (first group = the number)."""
    return records, skips or {}, aliases or {}, evidence or {}


CASES = {
    "vllm/v0_profiling_table_two_starts.log": case(
        [(V, GH + "vllm-project/vllm/pull/10511", "total_gpu_memory 79.22GiB"),
         (V, GH + "vllm-project/vllm/pull/10511", "-tp 2")],
        {0: {"tp": DEFAULT_TP}}, {}),
    "vllm/v0_split_line_cuda_blocks.log": case(
        [(V, GH + "vllm-project/vllm/pull/12126", "# CUDA blocks: 6001")],
        {0: {"tp": DEFAULT_TP, "gpu_name": NOT_IN_LOG}}, {}),
    "vllm/v0_split_full_log.log": case(
        [(V, "ref 60430572081", "model weights take 2.88GiB")],
        {0: {"gpu_name": NOT_IN_LOG, "model_id": "the log names the local directory models/Qwen2.5-Math-1.5B"}}, {}),
    "vllm/v064_peak_torch_two_starts.log": case(
        [(V, "ref 54021851790", "Loading model weights took 2.0512 GB")] * 2,
        {0: {"gpu_name": "taken from the host name"}, 1: {"gpu_name": "taken from the host name"}}, {}),
    "vllm/v0_tp_ranks_same_split.log": case(
        [(V, GH + "vllm-project/vllm/pull/14447", "model weights take 21.21GiB")],
        {0: {"gpu_name": NOT_IN_LOG, "quantization": NOT_IN_LOG}}, {}),
    "vllm/v0_loading_weights_gb.log": case(
        [(V, GH + "vllm-project/vllm/issues/11550", "Loading model weights took 7.9692 GB")], {}, {}),
    "vllm/v1_model_loading_kv_tokens.log": case(
        [(V, GH + "vllm-project/vllm/pull/17122", "Model loading took 14.9889 GiB")],
        {0: {"tp": DEFAULT_TP, "gpu_name": NOT_IN_LOG, "model_id": NOT_IN_LOG}}, {}),
    "vllm/v1_tp4_model_loading_gb.log": case(
        [(V, GH + "vllm-project/vllm/issues/15676", "13.1665 GB")],
        {0: {"tp": "the record assumes tp from the number of ranks; the parser does not guess",
             "vllm_version": NOT_IN_LOG}}, {}),
    "vllm/v1_actual_usage_full_log.log": case(
        [(V, "ref 34680831065", "Actual usage is 14.08 GiB")], {}, {}),
    "vllm/v1_consumed_memory.log": case(
        [(V, "ref 61815222665", "consumed memory")],
        {0: {"tp": DEFAULT_TP, "gpu_name": NOT_IN_LOG, "vllm_version": NOT_IN_LOG}}, {}),
    "vllm/v1_debug_profile.log": case(
        [(V, "ref 34681159919", "Total non KV cache memory")],
        {0: {"tp": DEFAULT_TP, "dtype": NOT_IN_LOG, "quantization": NOT_IN_LOG}}, {}),
    "vllm/v1_hard_wrapped_log.log": case(
        [(V, GH + "dennislee22/vLLM-benchmarking/blob/main/log/vllm-7B-1gpuA10080GB-0.25GRAM.log", "0.25")],
        {0: {"num_gpu_blocks": "the source file wraps the number onto the next line",
             "gpu_name": "named in the file name", "model_id": "the log names the local directory"}}, {}),
    "llamacpp/b7342_server_cuda.log": case(
        [(O, "ref 28957180799", "CUDA0 model buffer size = 30658.12 MiB")],
        {0: {"other_gib": "host (CUDA_Host) output buffer: the parser keeps host buffers out of GPU memory"}}, {}),
    "llamacpp/early2024_partial_offload.log": case(
        [(O, "ref 40095037829", "offloaded 25/33 layers")], {}, {}),
    "llamacpp/late2023_vram_scratch.log": case(
        [(O, "ref 858936764", "VRAM scratch buffer")], {}, {}),
    "llamacpp/ik_llama_two_gpus.log": case(
        [(O, GH + "ikawrakow/ik_llama.cpp/issues/398", "CUDA0 buffer size = 8509.23 MiB")],
        {0: {"gpu_name": "the record writes 'Tesla T4 x2'"}}, {}),
    "llamacpp/ik_llama_15_gpus_mla.log": case(
        [(O, GH + "ikawrakow/ik_llama.cpp/pull/237", "KV self size = 10980.00 MiB")],
        {0: {"gpu_name": NOT_IN_LOG, "kv_cache_dtype": "the record describes the MLA cache in words"}}, {}),
    "llamacpp/sched_reserve_2026.log": case(
        [(O, "ref 71267829832", "sched_reserve")],
        {0: {"n_ctx_or_max_len": "from the command line (-c 16384) quoted next to the log"}}, {}),
    "llamacpp/runner_q8_kv.log": case(
        [(O, "ref 55181072318", "CUDA0 KV buffer size = 229.50 MiB")],
        {0: {"gpu_name": NOT_IN_LOG, "n_ctx_or_max_len": NOT_IN_LOG, "kv_cache_dtype": NOT_IN_LOG}}, {}),
    "llamacpp/rpc_remote_device.log": case(
        [(O, "ref 5162908530", "RPC[192.168.62.35:50052] buffer size")],
        {0: {"gpu_name": NOT_IN_LOG, "n_ctx_or_max_len": NOT_IN_LOG, "kv_cache_dtype": NOT_IN_LOG,
             "num_gpus": "the record counts the remote RPC server's GPU; the parser sums local devices only"}}, {}),
    "sglang/sglang_2026_full.log": case(
        [(O, "ref 53259568910", "K size: 0.12 GB")],
        {0: {"gpu_name": NOT_IN_LOG, "tp": DEFAULT_TP, "num_gpus": NOT_IN_LOG}}, {},
        {"kv_cache_tokens": r"#tokens: (\d+)"}),
    "sglang/sglang_tp4_summary.log": case(
        [(O, "ref 55529353766", "K size: 5.69 GB")],
        {0: {"total_reported_gib": "nvidia-smi reading outside the log", "gpu_name": NOT_IN_LOG,
             "gpu_total_gib": NOT_IN_LOG, "kv_cache_dtype": NOT_IN_LOG, "num_gpus": NOT_IN_LOG}}, {},
        {"kv_cache_tokens": r"#tokens: (\d+)"}),
    "sglang/sglang_mamba_hybrid.log": case(
        [(O, "ref 46857556603", "GraniteMoeHybridForCausalLM")],
        {0: {"gpu_name": NOT_IN_LOG, "tp": DEFAULT_TP, "kv_cache_dtype": NOT_IN_LOG, "num_gpus": NOT_IN_LOG}}, {}),
    "sglang/sglang_tp4_kv_line.log": case(
        [(O, GH + "vllm-project/vllm/issues/21348", "#tokens: 367404")],
        {0: {"gpu_name": NOT_IN_LOG, "num_gpus": NOT_IN_LOG}}, {}, {"kv_cache_tokens": r"#tokens: (\d+)"}),
    "trtllm/trt_engine_bench.log": case(
        [(O, "ref 6161481015", "Loaded engine size: 6214 MiB")],
        {0: {"tp": NOT_IN_LOG, "num_gpus": NOT_IN_LOG, "kv_cache_dtype": NOT_IN_LOG}}, {},
        {"kv_cache_tokens": r"paged KV cache \((\d+)\)"}),
    "trtllm/trt_docs_memory_faq.log": case(
        [(O, "TensorRT-LLM docs 'memory.md'", "Loaded engine size: 6695 MiB")],
        {0: {"tp": NOT_IN_LOG, "num_gpus": NOT_IN_LOG}}, {}),
    "trtllm/trt_kv_only_issue4275.log": case(
        [(O, GH + "NVIDIA/TensorRT-LLM/issues/4275", "16.05 GiB")],
        {0: {"tp": NOT_IN_LOG, "num_gpus": NOT_IN_LOG, "gpu_name": NOT_IN_LOG, "kv_cache_dtype": NOT_IN_LOG,
             "n_ctx_or_max_len": NOT_IN_LOG}}, {}, {"kv_cache_tokens": r"paged KV cache \((\d+)\)"}),
    "trtllm/trt_pytorch_backend.log": case(
        [(O, "ref 2263047771", "63.52 GiB")],
        {0: {"tp": NOT_IN_LOG, "num_gpus": NOT_IN_LOG, "gpu_name": NOT_IN_LOG, "kv_cache_dtype": NOT_IN_LOG}},
        {"compute_buffer_gib": "activation_peak", "other_gib": "non_torch", "total_reported_gib": "peak_total"}),
    "tgi/tgi_mi300_two_shards.log": case(
        [(O, "ref 44311756189", "801568")], {0: {"gpu_name": NOT_IN_LOG}}, {},
        {"kv_cache_tokens": r"max batch total tokens to (\d+)"}),
    "tgi/tgi_scheduler_v3.log": case(
        [(O, "ref 22190908935", "19056")],
        {0: {"total_reported_gib": "nvidia-smi table after start-up, not a TGI line", "tp": NOT_IN_LOG,
             "num_gpus": NOT_IN_LOG, "gpu_name": NOT_IN_LOG, "gpu_total_gib": NOT_IN_LOG}}, {},
        {"kv_cache_tokens": r"max batch total tokens to (\d+)"}),
    "tgi/tgi_warmup_oom.log": case(
        [(O, GH + "huggingface/text-generation-inference/issues/563", "Currently allocated")],
        {0: {"num_gpus": NOT_IN_LOG}}, {}, {"peak_allocated_gib": r"Currently allocated\s*:\s*([\d.]+) GiB"}),
}

# record field -> where a profile keeps it (measured *_gib fields are converted from the profile's unit)
_PATHS = {
    "gpu_total_gib": ("gpu", "memory_gib"), "gpu_name": ("gpu", "name"), "num_gpus": ("gpu", "count"),
    "tp": ("parallel", "tp"), "pp": ("parallel", "pp"),
    "max_model_len": ("workload", "max_model_len"), "max_num_seqs": ("workload", "max_num_seqs"),
    "max_num_batched_tokens": ("workload", "max_num_batched_tokens"),
    "dtype": ("precision", "dtype"), "quantization": ("precision", "quantization"),
    "kv_cache_dtype": ("precision", "kv_cache_dtype"),
    "gpu_memory_utilization": ("engine_settings", "gpu_memory_utilization"),
    "enforce_eager": ("engine_settings", "enforce_eager"),
    "kv_cache_tokens": ("measured", "kv_cache_tokens"), "num_gpu_blocks": ("measured", "num_gpu_blocks"),
    "engine": ("engine",), "vllm_version": ("framework_version",), "model_id": ("model", "id"),
}


@lru_cache(maxsize=None)
def _records(name):
    path = PUBLIC_LOGS / name
    if not path.exists():
        pytest.skip(f"reference data {path} not available")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _record(name, source, evidence):
    hits = [r for r in _records(name)
            if source in ((r.get("source_url") or "") + " " + (r.get("source_ref") or "")) and evidence in r["evidence"]]
    distinct = {json.dumps(r, sort_keys=True) for r in hits}
    assert len(distinct) == 1, f"{name}: {len(distinct)} records match {source!r} / {evidence!r}"
    return hits[0]


def _gib(profile, quantity):
    """Measured quantity converted exactly to GiB (Decimal), or None."""
    for key, value in profile["measured"].items():
        unit = key.rsplit("_", 1)[-1]
        if key[: -len(unit) - 1] == quantity and value is not None:
            return Decimal(repr(value)) * UNIT_BYTES[unit] / UNIT_BYTES["gib"]
    return None


def _profile_value(profile, field, aliases):
    if field in aliases:
        return _gib(profile, aliases[field])
    if field.endswith("_gib") and field != "gpu_total_gib":
        quantity = {"total_reported_gib": "peak_total"}.get(field, field[:-4])
        return _gib(profile, quantity)
    if field == "n_ctx_or_max_len":
        workload = profile.get("workload", {})
        return workload.get("context_len", workload.get("max_model_len"))
    value = profile
    for part in _PATHS[field]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _comparable(field):
    return field in _PATHS or field == "n_ctx_or_max_len" or (field.endswith("_gib") and field not in (
        "model_file_gib", "cuda_graph_est_gib"))


_SAME_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "half": "float16"}


def _same(expected, got):
    if isinstance(expected, bool) or isinstance(expected, str):
        if isinstance(expected, str) and isinstance(got, str):
            norm = lambda x: _SAME_DTYPE.get(x.lower(), x.lower())  # noqa: E731
            return norm(expected) == norm(got)
        return expected == got
    if got is None:
        return False
    return Decimal(repr(expected)) == Decimal(repr(got) if not isinstance(got, Decimal) else got)


def _parse(relpath):
    return parse_log((FIXTURES / relpath).read_bytes(), source_name=Path(relpath).name)


@pytest.mark.parametrize("relpath", sorted(CASES))
def test_fixture_reproduces_harvested_record(relpath):
    records, skips, aliases, from_evidence = CASES[relpath]
    profiles = _parse(relpath)
    assert len(profiles) == len(records), f"{relpath}: {len(profiles)} profiles, expected {len(records)} starts"
    for index, ((name, source, evidence), profile) in enumerate(zip(records, profiles)):
        record = _record(name, source, evidence)
        skipped = skips.get(index, {})
        compared = 0
        for field, expected in record.items():
            if expected is None or field in skipped or not _comparable(field):
                continue
            if field == "model_id" and (name != V or not re.fullmatch(r"[\w.-]+/[\w.-]+", str(expected))):
                continue  # other frameworks' records name the model from the surrounding text
            if field == "engine" and expected not in ("v0", "v1"):
                continue
            got = _profile_value(profile, field, aliases)
            assert _same(expected, got), f"{relpath} start {index}: {field}: record {expected!r}, parsed {got!r}"
            compared += 1
        for field, pattern in from_evidence.items():
            expected = re.search(pattern, record["evidence"]).group(1)
            got = profile["measured"].get(field)
            assert got is not None and Decimal(expected) == Decimal(repr(got)), f"{relpath}: {field} {got!r}"
            compared += 1
        assert compared >= 1, f"{relpath}: nothing compared"


def test_every_fixture_is_checked_and_cites_its_source():
    files = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.log"))
    assert files == sorted(CASES)
    for relpath in files:
        header = [line for line in (FIXTURES / relpath).read_text(encoding="utf-8").splitlines()
                  if line.startswith("# ")][:4]
        assert any(line.startswith("# mirrors: ") for line in header), relpath
        assert any(line.startswith("# lines: ") for line in header), relpath
        with pytest.raises(NoMeasurementsError):  # the header itself holds no measurement
            parse_log("\n".join(header))


def test_two_engine_starts_give_two_profiles_with_stable_ids():
    for relpath in ("vllm/v0_profiling_table_two_starts.log", "vllm/v064_peak_torch_two_starts.log"):
        first, second = _parse(relpath), _parse(relpath)
        assert len(first) == 2
        assert [p["profile_id"] for p in first] == [p["profile_id"] for p in second]
        assert first[0]["profile_id"] != first[1]["profile_id"]
        assert first[0]["profile_id"].endswith("-0") and first[1]["profile_id"].endswith("-1")


def test_tensor_parallel_ranks_fold_into_one_run():
    for relpath in ("vllm/v0_tp_ranks_same_split.log", "vllm/v1_tp4_model_loading_gb.log"):
        (profile,) = _parse(relpath)
        assert "ranks_differ" not in profile["flags"]


# the formats issue 5 lists: each must occur in at least one fixture, and be read from it
FORMATS = {
    "vllm": ["model weights take", "non_torch_memory takes", "PyTorch activation peak memory takes",
             "the rest of the memory reserved for KV Cache is", "Memory profiling results:", "peak_torch_memory=",
             "Loading model weights took", "# GPU blocks:", "Model loading took", "Available KV cache memory:",
             "GPU KV cache size:", "Maximum concurrency for", "Graph capturing finished in",
             "GiB for weight, ", "GiB for CUDAGraph memory", "Initializing a V1 LLM engine", "non-default args:",
             "vLLM API server version", "vllm serve "],
    "llamacpp": ["model buffer size", "KV buffer size", "KV self size", "compute buffer size", "n_ctx ", "n_batch ",
                 "n_ubatch ", "K (f16)", "flash_attn", "offloaded", "model type", "build: ", "llm_load_tensors:",
                 "load_tensors:", "llama_kv_cache_init:", "llama_kv_cache:"],
    "sglang": ["Load weight end", "KV Cache is allocated. #tokens", "Capture cuda graph end", "max_total_num_tokens"],
    "trtllm": ["[MemUsageChange] Allocated", "for max tokens in paged KV cache", "execution context memory",
               "Loaded engine size", "dynamically allocated during inference"],
    "tgi": ["Setting max batch total tokens", "Sharding model on", "Currently allocated"],
}


@pytest.mark.parametrize("framework", sorted(FORMATS))
def test_every_listed_format_has_a_fixture(framework):
    text = "\n".join(p.read_text(encoding="utf-8") for p in (FIXTURES / framework).glob("*.log"))
    missing = [phrase for phrase in FORMATS[framework] if phrase not in text]
    assert not missing, f"{framework}: no fixture shows {missing}"
