"""Reviewed tables for :mod:`fitting.data.public_logs` (the rule tables, kept apart from the conversion code).

Everything here is a judgement about the public records, written down so that it can be
reviewed in one place: which free-text model names map to which Hugging Face id, which
caveats exclude a record from default fits, which figures are read from the printed
evidence, and which unit base each source uses and why. Nothing here changes a figure.
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------- models

#: Free-text model names (exactly as in the source records) -> (HF id, weight format).
#: Only names that identify one architecture unambiguously; base/instruct pairs share
#: an architecture, so "Llama2-7B" -> the base repo is safe. Quantized free-text names
#: map to the base model with the quantization as ``weight_format``. Names not listed
#: and not an exact ``org/name`` id stay unresolved (``model.id`` null).
MODEL_TABLE: dict[str, tuple[str, str | None]] = {
    # vllm.jsonl
    "Llama-2-7B (written 'Llama2-7B')": ("meta-llama/Llama-2-7b-hf", None),
    "Llama-2-70B (written 'Llama2-70B')": ("meta-llama/Llama-2-70b-hf", None),
    "Qwen/Qwen2-7B-Instruct (local dir Qwen2-7B-Instruct)": ("Qwen/Qwen2-7B-Instruct", None),
    "meta-llama/Llama-3.2-3B (as '3.2 3b')": ("meta-llama/Llama-3.2-3B", None),
    "Qwen/Qwen3-30B-A3B (YaRN x4)": ("Qwen/Qwen3-30B-A3B", None),
    "lmstudio-community/Llama-3.2-3B-Instruct-GGUF (Q8_0)": ("lmstudio-community/Llama-3.2-3B-Instruct-GGUF", "Q8_0"),
    "microsoft/phi-4 (local copy, Unsloth bnb 4-bit fp4)": ("microsoft/phi-4", "bitsandbytes 4-bit fp4"),
    "Qwen/Qwen3-8B (+ RedHatAI/Qwen3-8B-speculator.dflash, 7 spec tokens)": ("Qwen/Qwen3-8B", None),
    "Qwen2.5-7B-Instruct-AWQ": ("Qwen/Qwen2.5-7B-Instruct", "AWQ"),
    "Llama-3.1-8B-Instruct-AWQ": ("meta-llama/Llama-3.1-8B-Instruct", "AWQ"),
    "Qwen3-8B-FP8 (local)": ("Qwen/Qwen3-8B", "FP8"),
    "Mistral-Small-3.1-24B AWQ (mistral3.1-AWQ)": ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "AWQ"),
    "Yi-34B (AWQ 4-bit)": ("01-ai/Yi-34B", "AWQ 4-bit"),
    "openai/gpt-oss-120b (local dir gpt-oss-120b)": ("openai/gpt-oss-120b", None),
    "Qwen3.8-27B-K4 EXL3 (quant of Qwen/Qwen3.8-27B)": ("Qwen/Qwen3.8-27B", "EXL3 (K4 MLP, K6 attention/lm_head)"),
    "RadixArk/Qwen3.8-Flash-Next-NVFP4 (checkpoint @7b71922)": ("RadixArk/Qwen3.8-Flash-Next-NVFP4", None),
    "nvidia/Qwen3.8-Flash-Next-NVFP4 + MTP3": ("nvidia/Qwen3.8-Flash-Next-NVFP4", None),
    "nvidia/Qwen3.8-Flash-Next-NVFP4 + MTP4": ("nvidia/Qwen3.8-Flash-Next-NVFP4", None),
    # other_frameworks.jsonl
    "Qwen3-30B-A3B (unsloth UD-Q4_K_XL gguf)": ("Qwen/Qwen3-30B-A3B", "UD-Q4_K_XL"),
    "Qwen3-Coder-30B-A3B-Instruct (unsloth gguf)": ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "Q8_0"),
    "GritLM-7B (cohesionet/GritLM-7B_gguf gritlm-7b_q4_1.gguf)": ("cohesionet/GritLM-7B_gguf", "Q4_1"),
    "Qwen3-235B-A22B-FP8": ("Qwen/Qwen3-235B-A22B-FP8", "fp8"),
    "hermes3:8b (Hermes 3, Llama-3.1-8B family; 32 blocks, 8 KV heads)": ("NousResearch/Hermes-3-Llama-3.1-8B", "Q4_0"),
    "qwen2.5:7b (ollama tag)": ("Qwen/Qwen2.5-7B-Instruct", None),
    "DeepSeek-R1 (gghfez DeepSeek-R1-11446-Q2_K gguf, 671B)": ("deepseek-ai/DeepSeek-R1", "Q2_K"),
    "DeepSeek-V2-Lite (16B MoE, 'DeepSeek-Lite')": ("deepseek-ai/DeepSeek-V2-Lite", "IQ4_NL"),
    "Qwen/Qwen2.5-7B-Instruct (modelopt int4_awq)": ("Qwen/Qwen2.5-7B-Instruct", "int4_awq"),
    "Qwen2.5-7B-Instruct (Q4_K_M gguf)": ("Qwen/Qwen2.5-7B-Instruct", "Q4_K_M"),
    "Phi-3-mini-4k-instruct (gguf 'Phi-3-mini-4k-instruct-q4')": ("microsoft/Phi-3-mini-4k-instruct", "Q4_K_M"),
    "bigcode/octocoder (15.5B StarCoder-based, MQA)": ("bigcode/octocoder", None),
    "LLaMA 65B": ("huggyllama/llama-65b", "Q2_K"),
    # sweeps.jsonl
    "LLaMA-7B (ggml q6_K)": ("huggyllama/llama-7b", "q6_K"),
    "LLaMA-65B (ggml q2_K)": ("huggyllama/llama-65b", "q2_K"),
    "mistralai/Mistral-7B-v0.1 (bnb config file not seen; _base_ model)": ("mistralai/Mistral-7B-v0.1", None),
}

#: An exact Hugging Face id: ``org/name`` with nothing else.
HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

#: Names that say the source did not name the model.
UNNAMED = re.compile(r"^(?:unnamed|unidentified)\b|not named|name not in", re.IGNORECASE)

# --------------------------------------------------------------------------- frameworks

#: Printed framework name (lower case, prefix test) -> framework family.
FRAMEWORK_PREFIXES = (
    ("ik_llama.cpp", "llamacpp"), ("llama.cpp", "llamacpp"), ("ollama", "llamacpp"),
    ("koboldcpp", "llamacpp"), ("llama-cpp-python", "llamacpp"), ("sglang", "sglang"),
    ("tensorrt-llm", "trtllm"), ("hugging face tgi", "tgi"), ("hugging face transformers", "transformers"),
    ("transformers", "transformers"), ("autoawq", "transformers"), ("torchao", "pytorch"),
)

#: Canonical printed names that need no framework_variant.
PLAIN_FRAMEWORK_NAMES = {"llama.cpp", "SGLang", "TensorRT-LLM", "Hugging Face TGI"}

POOL_FRAMEWORKS = {"vllm", "sglang", "trtllm", "tgi"}

# --------------------------------------------------------------------------- caveats

#: (flag, reason, fields searched, regex). A record matching a rule gets the flag; the
#: reason, when not None, excludes it from default fits (``use_in_fit: false``).
#: ``fields`` name keys of the source record ("*" = every string field).
CAVEAT_RULES = (
    ("unified_memory",
     "unified-memory host (GPU and CPU share memory): pool, free and KV figures are not comparable to a discrete GPU",
     ("gpu_name", "notes"), re.compile(r"unified[- ]memory|\(unified|GB10|DGX Spark|Jetson", re.I)),
    ("non_nvidia_gpu", "non-NVIDIA accelerator (ROCm/HIP, Intel XPU, Hygon DCU): different runtime and allocator",
     ("gpu_name", "engine"), re.compile(r"\bAMD\b|ROCm|XPU|Hygon|\bDCU\b|MI300|gfx9", re.I)),
    ("fork_build", "built from a fork of the framework (fork-only kernels, options or memory handling)",
     ("source_url", "vllm_version", "engine", "framework"),
     re.compile(r"1Cat-vLLM|guqiong96/Lvllm|local-inference-lab/vllm|\bfork\b|ik_llama\.cpp|koboldcpp|"
                r"ollama37|GenerelSchwerz", re.I)),
    ("fork_build", "built from a fork of the framework (fork-only kernels, options or memory handling)",
     ("notes",), re.compile(r"forked vLLM required|Unsloth-patched vLLM|turbomind vLLM plugin|"
                            r"1Cat-vLLM fork|Lvllm fork", re.I)),
    ("patched_build", "patched build (local patches change what is allocated)",
     ("vllm_version", "source_ref", "quantization"),
     re.compile(r"repo patches|\bpatch\b|turbomind plugin", re.I)),
    ("speculative_decoding",
     "speculative decoding: a draft model / MTP head adds weights and buffers the target model's physics does not include",
     ("model_id", "notes"),
     re.compile(r"\+ ?MTP|MTP drafter|\bMTP on\b|speculative decoding|spec(?:ulative)? tokens|DFlash|speculator|"
                r"EAGLE|DSpark|drafter|draft model", re.I)),
    ("failed_run", "figure taken from a failed start (OOM at warmup / no KV left): not a working configuration",
     ("notes",), re.compile(r"failed run|Not a successful run", re.I)),
    ("legacy_build",
     "2023 scratch-buffer-era llama.cpp build: buffer layout differs from current builds (KV on host unless offloaded)",
     ("framework", "framework_version"),
     re.compile(r"2023 scratch-buffer era|VRAM scratch buffer' log format|\bAug 2023\b|\bOct 2023\b|June 2023", re.I)),
    ("approximate_figure", None, ("notes",),
     re.compile(r"rounded|(?:printed|given) as '~[\d.,]+(?: GiB)?'(?! \(approximate, not stored\))", re.I)),
    ("co_resident", None, ("notes",), re.compile(r"co-?located|co-?resident|Second instance on the same", re.I)),
    ("cpu_offload", None, ("notes",), re.compile(r"cpu_offload_gb=[1-9]", re.I)),
    ("lora_enabled", None, ("notes",), re.compile(r"\bLoRA\b")),
    ("partial_offload", None, ("notes",), re.compile(r"partial offload|layers on GPU \(output layer on CPU\)|"
                                                       r"\b0 layers offloaded", re.I)),
)

#: Per-source exclusions that the rules above cannot express. Each entry:
#: (source file, predicate on the record, flag, reason).
def _is(url_part):
    return lambda r: url_part in (r.get("source_url") or "")


SOURCE_RULES = (
    ("other_frameworks.jsonl",
     lambda r: "ggml-org/llama.cpp/issues/23527" in (r.get("source_url") or "")
     and "baseline" not in (r.get("framework_version") or ""),
     "patched_build", "patched build (PR #23764 and/or the n_outputs cap applied locally)"),
    ("other_frameworks.jsonl", lambda r: (r.get("framework") or "").startswith("ollama (ollama engine"),
     "non_llamacpp_engine",
     "ollama's own Go engine (not llama.cpp's graph), sizes printed rounded to 0.1 GiB"),
    ("other_frameworks.jsonl", _is("ggml-org/llama.cpp/pull/2551"),
     "duplicate_record", "same measurement as sweeps.jsonl series llamacpp-scratch-min_65b (kept there)"),
    ("other_frameworks.jsonl", _is("ggml-org/llama.cpp/pull/2551"),
     "minimum_by_search", "minimum scratch size found by trial (not what a run allocates)"),
    ("sweeps.jsonl", lambda r: (r.get("series") or "").startswith("llamacpp-scratch-min"),
     "minimum_by_search", "minimum scratch size found by trial (not what a run allocates)"),
    ("sweeps.jsonl", lambda r: "never resets peak stats" in (r.get("measure") or ""),
     "running_maximum", "running maximum across benchmark rounds (AutoAWQ benchmark.py never resets the peak counter)"),
    ("sweeps.jsonl", lambda r: (r.get("series") or "").startswith("trtllm-win"),
     "includes_kv_pool",
     "NVML peak of a TensorRT-LLM engine includes the KV pool preallocated from the free memory of an unnamed GPU"),
    ("vllm.jsonl", lambda r: "Not a full-engine total" in (r.get("notes") or ""),
     "not_a_run_total", None),
    ("vllm.jsonl", lambda r: "as the closest field" in (r.get("notes") or ""),
     "closest_field", "figure is a PR debug quantity ('reserved memory for max workload') stored in the closest field"),
)

# --------------------------------------------------------------------------- figures

#: Figures read from a record's printed evidence (or notes) that the dataset did not put
#: in a numeric field. (file, predicate, field searched, regex, measured name, extra flags,
#: note). The regex's first group is the figure exactly as printed.
_ANY = lambda r: True  # noqa: E731

EXTRA_FIGURES = (
    ("vllm.jsonl", _ANY, "evidence", re.compile(r"peak_torch_memory=([\d.]+)GiB"), "peak_torch_gib", (),
     "peak_torch_gib: V0 v0.6.4-era 'peak_torch_memory' (includes the weights) read from the evidence"),
    ("vllm.jsonl", _ANY, "evidence", re.compile(r"Total non KV cache memory: ([\d.]+)GiB"), "non_kv_total_gib", (),
     "non_kv_total_gib: V1 DEBUG 'Total non KV cache memory' read from the evidence"),
    ("vllm.jsonl", _ANY, "evidence",
     re.compile(r"Actual usage is ([\d.]+) GiB for consumed memory \(weights \+ non-torch\)"), "weights_non_torch_gib", (),
     "weights_non_torch_gib: 'consumed memory (weights + non-torch)', printed as one figure"),
    ("vllm.jsonl", _ANY, "notes",
     re.compile(r"(?:weights ?\+ ?non[-_ ]torch combined|consumed ?\(weights ?\+ ?non-torch\))\s*=?\s*([\d.]+) GiB", re.I),
     "weights_non_torch_gib", (), "weights_non_torch_gib: weights + non-torch memory printed as one figure"),
    ("vllm.jsonl", _ANY, "evidence", re.compile(r"non_kv \| (\d+) MiB"), "non_kv_total_mib", (),
     "non_kv_total_mib: the author's non-KV total (weights + peak activation + CUDA graph)"),
    ("vllm.jsonl", _ANY, "evidence", re.compile(r"non_kv 2610→(\d+) MiB"), "non_kv_total_mib", (),
     "non_kv_total_mib: the author's non-KV total at max_model_len 8192"),
    # SGLang / TGI / TensorRT-LLM token capacities
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"#tokens: (\d+)"), "kv_cache_tokens", (), None),
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"max_total_num_tokens=(\d+)"), "kv_cache_tokens", (), None),
    ("other_frameworks.jsonl", lambda r: r.get("framework") == "SGLang", "notes",
     re.compile(r"(?:KV #tokens |max_total_num_tokens=)(\d+)"), "kv_cache_tokens", (), None),
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"Setting max batch total tokens to (\d+)"),
     "kv_cache_tokens", (), "kv_cache_tokens: TGI 'max batch total tokens' (KV capacity)"),
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"paged KV cache \((\d+)\)"), "kv_cache_tokens", (), None),
    # TGI warmup OOM
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"Currently allocated : ([\d.]+) GiB"),
     "torch_allocated_gib", (), "torch_allocated_gib: torch 'Currently allocated' at the warmup OOM (not a peak)"),
    # TensorRT-LLM raw figures
    ("other_frameworks.jsonl", _ANY, "notes", re.compile(r"raw: activation memory (\d+)MB"), "compute_buffer_mb",
     ("unit_base_unverified",),
     "compute_buffer_mb: TensorRT 'activation memory' as read by the author, unit printed 'MB' (base not stated; "
     "stored under _mb = 1e6 B as an assumption)"),
    ("other_frameworks.jsonl", _ANY, "notes", re.compile(r"raw: gpu_peak_mem\(gb\) ([\d.]+)"), "peak_total_gib",
     ("unit_base_inferred",),
     "peak_total_gib: benchmarks/python benchmark.py 'gpu_peak_mem(gb)', peak NVML device-used memory; the script "
     "reports it via MemoryMonitor.get_peak_memory_usage('GiB') (read in a later copy of the script, not this version)"),
    ("other_frameworks.jsonl", _ANY, "notes", re.compile(r"raw: GPU memory '(\d+)g'"), "peak_unspecified_gb",
     ("unit_base_unverified", "measure_unverified"),
     "peak_unspecified_gb: 'gpu memory ... in inference phrase' as written in the issue (unit 'g', base and "
     "measuring tool not stated; stored under _gb = 1e9 B as an assumption)"),
    # unsloth PR table (GB of unknown base)
    ("other_frameworks.jsonl", _ANY, "notes", re.compile(r"raw \(unit 'GB'[^)]*\): weights=([\d.]+) GB"), "weights_gb",
     ("unit_base_unverified",), "weights_gb / kv_cache_gb / compute_buffer_gb: table in 'GB' whose base the PR "
                               "does not state; stored under _gb = 1e9 B as an assumption; its 'Total' is their sum"),
    ("other_frameworks.jsonl", _ANY, "notes", re.compile(r"raw \(unit 'GB'[^)]*\): weights=[\d.]+ GB, kv=([\d.]+) GB"),
     "kv_cache_gb", ("unit_base_unverified",), None),
    ("other_frameworks.jsonl", _ANY, "notes",
     re.compile(r"raw \(unit 'GB'[^)]*\): weights=[\d.]+ GB, kv=[\d.]+ GB, compute=([\d.]+) GB"),
     "compute_buffer_gb", ("unit_base_unverified",), None),
    # jina GGUF model card
    ("other_frameworks.jsonl", _ANY, "notes", re.compile(r"peak_vram=([\d.]+) GB"), "peak_unspecified_gb",
     ("unit_base_unverified", "measure_unverified"),
     "peak_unspecified_gb: 'Peak VRAM (GB)' column of the model card (measuring tool and GB base not stated; "
     "stored under _gb = 1e9 B as an assumption)"),
    # koboldcpp 2023 ('MB' labels of old llama.cpp code)
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"total VRAM used: ([\d.]+) MB"), "peak_total_mb",
     ("unit_base_unverified",),
     "koboldcpp/llama.cpp 2023 'MB' labels (that era's code divided by 1024*1024, so probably MiB; not verified "
     "here): stored under _mb as printed. peak_total_mb = its own 'total VRAM used' (sum of its buffers)"),
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"\(model: ([\d.]+) MB"), "weights_mb",
     ("unit_base_unverified",), None),
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"context: ([\d.]+) MB\)"), "other_mb",
     ("unit_base_unverified",), "other_mb: koboldcpp 'context' = KV of the offloaded layers + scratch"),
    ("other_frameworks.jsonl", _ANY, "evidence", re.compile(r"batch_size x 1 MB = (\d+) MB VRAM for the scratch"),
     "compute_buffer_mb", ("unit_base_unverified",), "compute_buffer_mb: 2023 'VRAM scratch buffer'"),
)

#: Printed engine/batch settings of other_frameworks.jsonl read into engine_settings:
#: (regex on batch_setting, setting name, type).
SETTING_PATTERNS = (
    (re.compile(r"\bn_batch=(\d+)"), "n_batch", int),
    (re.compile(r"\bn_ubatch=(\d+)"), "n_ubatch", int),
    (re.compile(r"(?:^|[\s,])-b (\d+)"), "n_batch", int),
    (re.compile(r"(?:^|[\s,])-ub (\d+)"), "n_ubatch", int),
    (re.compile(r"u-batch (\d+)"), "n_ubatch", int),
    (re.compile(r"\bnum_batch=(\d+)"), "n_batch", int),
    (re.compile(r"BatchSize:(\d+)"), "n_batch", int),
    (re.compile(r"max_batch_size=(\d+)"), "max_batch_size", int),
    (re.compile(r"Max Runtime Batch Size: (\d+)"), "max_batch_size", int),
    (re.compile(r"max_num_tokens=(\d+)"), "max_num_tokens", int),
    (re.compile(r"(?:--mem-fraction-static |mem_fraction_static=)([\d.]+)"), "mem_fraction_static", float),
    (re.compile(r"(?:kv_cache_free_gpu_mem_fraction|free_gpu_memory_fraction)=([\d.]+)"), "free_gpu_memory_fraction", float),
    (re.compile(r"chunked_prefill_size=(\d+)"), "chunked_prefill_size", int),
    (re.compile(r"max_running_requests=(\d+)"), "max_running_requests", int),
    (re.compile(r"max_prefill_tokens=(\d+)"), "max_prefill_tokens", int),
)

# --------------------------------------------------------------------------- sweeps

#: Measure text (sweeps.jsonl ``measure``) -> measured quantity, first match wins.
#: Flags a measure implies (measure note -> flag): the optimum benchmark_gptq.py total is
#: allocated peak + (NVML peak - reserved peak), no allocator slack (measurement model in
#: fitting.overhead.measurement).
SWEEP_MEASURE_FLAGS = {
    "peak_total here = peak torch-allocated plus non-PyTorch memory, not a device reading":
        "allocated_plus_non_torch",
}

SWEEP_MEASURES = (
    (re.compile(r"allocated_bytes\.all\.peak\*1e-6 \+"), "peak_total",
     "peak_total here = peak torch-allocated plus non-PyTorch memory, not a device reading"),
    (re.compile(r"scratch buffer size|compute buffer|pp buffer", re.I), "compute_buffer", None),
    (re.compile(r"'Peak Mem \(MB\)'"), "peak_unspecified", None),
    (re.compile(r"gpu_peak_mem"), "peak_total", None),
    (re.compile(r"NVML|max_memory_used|device-used", re.I), "peak_total", None),
    (re.compile(r"max_memory_reserved"), "peak_reserved", None),
    (re.compile(r"max_memory_allocated"), "peak_allocated", None),
)

#: Unit base per sweep source: (predicate on record, printed unit, field suffix, flag or
#: None, reason). First match wins.
def _series(prefix):
    return lambda r: (r.get("series") or "").startswith(prefix)


SWEEP_UNITS = (
    (_series("optimum-gptq-bench"), "MB", "mb", None,
     "benchmark_gptq.py multiplies bytes by 1e-6, so 'MB' = 1e6 bytes"),
    # optimum_benchmark/env_utils.py bytes_to_mega_bytes() is ``int(bytes * 1e-6)`` at each
    # commit that added these artifacts (read in the repository's history)
    (_series("optimum-benchmark-dec2023"), "MB", "mb", None,
     "optimum-benchmark's bytes_to_mega_bytes() returns int(bytes * 1e-6) ('MB, not MiB') at commits c8bbe4e "
     "(2023-11-29) and f75d9f9 (2023-11-30) that added these reports (optimum_benchmark/env_utils.py), so "
     "'MB' = 1e6 bytes"),
    (_series("optimum-benchmark-aug2023"), "MB", "mb", None,
     "optimum-benchmark's bytes_to_mega_bytes() returns int(bytes * 1e-6) at commit 01ccad5 (2023-09-01) that "
     "stored this report (optimum_benchmark/env_utils.py), so 'MB' = 1e6 bytes"),
    (_series("optimum-benchmark-oct2023"), "MB", "mb", None,
     "optimum-benchmark's bytes_to_mega_bytes() returns int(bytes * 1e-6) at commit 014c97e (2023-10-30) that "
     "added these reports (optimum_benchmark/env_utils.py), so 'MB' = 1e6 bytes"),
    (_series("tfdocs-sdpa-inference"), "MB", "mb", "unit_base_inferred",
     "the SDPA benchmark script family multiplies max_memory_allocated by 1e-6 (verified in a derivative script; "
     "the exact gist was not read)"),
    (_series("hf-experts-backends"), "MB", "mb", "unit_base_unverified",
     "'Peak Mem (MB)': measuring code not read, base not stated; stored under _mb = 1e6 B as an assumption"),
    (lambda r: "AutoAWQ" in (r.get("measure") or ""), "GB", "gib", None,
     "AutoAWQ benchmark.py prints max_memory_allocated/1024**3 labelled 'GB', so the figure is GiB"),
    (_series("torchao"), "GB", "gb", None, "torchao generate.py prints max_memory_reserved()/1e9, so 'GB' = 1e9 bytes"),
    (_series("trtllm"), "gb", "gib", None,
     "benchmark.py 'gpu_peak_mem(gb)' comes from MemoryMonitor.get_peak_memory_usage('GiB'), so 'gb' is GiB"),
    (_series("llamacpp"), "MiB", "mib", None, "llama.cpp prints MiB"),
)

#: Flags a series implies for one measured quantity: (predicate on record, quantity, flag).
#: optimum-benchmark's MemoryTracker (Aug-Dec 2023) reads ``nvmlDeviceGetMemoryInfo(handle).used``
#: right after the tracked call (optimum_benchmark/trackers/memory.py at 01ccad5, 014c97e,
#: c8bbe4e): the allocator's reserved segments plus the memory outside PyTorch.
#: Before Nov 2023 the tracker neither emptied the cache nor reset the peak statistics before
#: the call (014c97e, 01ccad5; c8bbe4e added ``torch.cuda.empty_cache()`` and
#: ``reset_peak_memory_stats``), so its reading also holds segments cached by model loading
#: and earlier calls.
SWEEP_SERIES_FLAGS = (
    (_series("optimum-benchmark"), "peak_total", "nvml_used_after_call"),
    (_series("optimum-benchmark-aug2023"), "peak_total", "cache_not_emptied"),
    (_series("optimum-benchmark-oct2023"), "peak_total", "cache_not_emptied"),
)

#: GPU names a source states elsewhere than in the harvested record: (predicate on record,
#: GPU name, where it is stated). The Oct-2023 running-mistrals short report gives only its
#: artifacts folder 'A100-80GB'; the full report beside it names the devices.
SWEEP_GPU_NAMES = (
    (_series("optimum-benchmark-oct2023_mistral7b"), "NVIDIA A100-SXM4-80GB",
     "GPU from the run's full report: examples/running-mistrals/artifacts/A100-80GB/full_report.csv at "
     "optimum-benchmark commit 014c97e, column environment.gpus = ['NVIDIA A100-SXM4-80GB', "
     "'NVIDIA A100-SXM4-80GB'] (the benchmark ran on one of them: CUDA_VISIBLE_DEVICES)"),
)

#: Quantization a source's own config states where the harvested record did not see it:
#: (predicate on record, quantization text, where it is stated).
SWEEP_QUANTIZATION = (
    (_series("optimum-benchmark-oct2023_mistral7b_A100-80GB_bnb"),
     "bitsandbytes 4-bit fp4 (load_in_4bit, compute float16; transformers 4.35 defaults: quant type fp4, "
     "no nested quantization)",
     "bitsandbytes settings from examples/running-mistrals/configs/bnb.yaml at optimum-benchmark commit 014c97e: "
     "quantization_config {load_in_4bit: true, bnb_4bit_compute_dtype: float16}; BitsAndBytesConfig defaults "
     "bnb_4bit_quant_type='fp4', bnb_4bit_use_double_quant=False"),
)

#: Workload fields a sweep record leaves empty, from the benchmark script's own default:
#: (predicate on record, {field: value}, where the value comes from).
SWEEP_WORKLOAD_DEFAULTS = (
    (_series("tfdocs-sdpa-inference"), {"output_len": 100},
     "output_len 100 assumed: the docs tables report 'Per token latency' from generate(), and the SDPA inference "
     "benchmark script of this family generates exactly --max_token new tokens (GenerationConfig(max_new_tokens="
     "max_token, min_new_tokens=max_token)), default 100 (read in a public copy of the script, search-index file "
     "id 31209750363); the docs do not state the value they passed"),
)

#: optimum-benchmark Dec-2023 series suffixes merged into one profile per run and phase.
MERGE_SUFFIXES = {"alloc": "peak_allocated", "resv": "peak_reserved", "used": "peak_total"}
PHASES = {"gen": "generate", "fwd": "prefill", "generate": "generate", "forward": "prefill", "prefill": "prefill"}

PLAIN_DTYPES = re.compile(r"^(?:fp16|f16|float16|bf16|bfloat16|fp32|f32|float32)\b", re.I)


# --------------------------------------------------------------------------- vllm.jsonl: lines read in the source
_DL = "https://github.com/dennislee22/vLLM-benchmarking/blob/main/log/"
_FI_LINE = "[topk_topp_sampler.py:50] Using FlashInfer for top-p & top-k sampling."

#: Mechanism lines a vLLM record's excerpt left out, read in the record's own source file
#: (source URL -> note). fitting.data.vllm_settings reads the quoted line.
VLLM_SOURCE_LINES = {
    _DL + "vllm-7B-1gpuA10080GB-0.25GRAM.log":
        f"The linked log (read at commit 391660d) prints '{_FI_LINE}'",
    _DL + "vllm-7B-1gpuA10080GB-0.5GRAM.log":
        f"The linked log (read at commit 608c86e) prints '{_FI_LINE}'",
    _DL + "vllm-7B-2gpuA10080GB-0.5GRAM-same-node.log":
        f"The linked log (read at commit e514a58) prints '{_FI_LINE}' on both workers",
    _DL + "vllm-120B-4gpuA10080GB-0.8GRAM-diff-nodes.log":
        f"The linked log (read at commit 0787d88) prints '{_FI_LINE}' on all four workers",
}
