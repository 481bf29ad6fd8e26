"""Error classification on messages that PyTorch, transformers and vLLM really printed.

Every message below is quoted from the issue thread named beside it (found with the
project's search tool); the sizes expected are the ones printed there.
"""

import pytest

from fitting.profile.errors import FINAL_KINDS, KINDS, classify_error

GIB, MIB = 2**30, 2**20

# (url, message, kind, expected details subset)
REAL_MESSAGES = [
    (
        "https://github.com/vllm-project/vllm/issues/2140",
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.50 GiB. GPU 0 has a total capacty "
        "of 23.69 GiB of which 3.09 GiB is free. Including non-PyTorch memory, this process has 20.57 GiB memory "
        "in use. Of the allocated memory 20.13 GiB is allocated by PyTorch, and 755.50 KiB is reserved by PyTorch "
        "but unallocated.",
        "out_of_memory",
        {"requested_bytes": round(3.50 * GIB), "total_bytes": round(23.69 * GIB), "free_bytes": round(3.09 * GIB),
         "gpu_index": 0},
    ),
    (
        "https://github.com/vllm-project/vllm/issues/783",
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.63 GiB (GPU 0; 44.56 GiB total "
        "capacity; 27.91 GiB already allocated; 565.31 MiB free; 27.93 GiB reserved in total by PyTorch) If "
        "reserved memory is >> allocated memory try setting max_split_size_mb to avoid fragmentation.",
        "out_of_memory",
        {"requested_bytes": round(1.63 * GIB), "total_bytes": round(44.56 * GIB), "free_bytes": round(565.31 * MIB)},
    ),
    (
        "https://github.com/vllm-project/vllm/issues/16343",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of "
        "23.68 GiB of which 212.81 MiB is free.",
        "out_of_memory",
        {"requested_bytes": round(350.00 * MIB), "total_bytes": round(23.68 * GIB), "free_bytes": round(212.81 * MIB)},
    ),
    (
        "https://github.com/vllm-project/tpu-inference/pull/223",
        "ValueError: To serve at least one request with the models's max seq len (131072), (16.00 GiB KV cache is "
        "needed, which is larger than the available KV cache memory (0.71 GiB). Based on the available memory, the "
        "estimated maximum model length is 5632. Try increasing `gpu_memory_utilization` or decreasing "
        "`max_model_len` when initializing the engine.",
        "out_of_memory",
        {"max_model_len": 131072, "requested_bytes": round(16.00 * GIB), "available_bytes": round(0.71 * GIB),
         "estimated_max_model_len": 5632},
    ),
    (
        "https://github.com/kaito-project/kaito/issues/2132",
        "ValueError: To serve at least one request with the model's max seq len (1048576),\n22.5 GiB KV cache is "
        "needed, which is larger than the available KV cache memory (17.39 GiB).\nBased on the available memory, "
        "the estimated maximum model length is 810208.",
        "out_of_memory",
        {"max_model_len": 1048576, "requested_bytes": round(22.5 * GIB), "available_bytes": round(17.39 * GIB),
         "estimated_max_model_len": 810208},
    ),
    (
        "https://github.com/vllm-project/vllm/issues/2418",
        "ValueError: The model's max seq len (4096) is larger than the maximum number of tokens that can be stored "
        "in KV cache (3664). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
        "initializing the engine.",
        "out_of_memory",
        {"required_tokens": 4096, "available_tokens": 3664},
    ),
    (
        "https://github.com/vllm-project/vllm/issues/10439",
        "vllm-1  | ERROR 11-18 18:07:28 engine.py:366]     raise ValueError(\"No available memory for the cache "
        "blocks. \"\nvllm-1  | ERROR 11-18 18:07:28 engine.py:366] ValueError: No available memory for the cache "
        "blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
        "out_of_memory",
        {},
    ),
    (
        "https://github.com/h2oai/h2o-llmstudio/issues/560",
        "ValueError: Loading pansophic/rocket-3B requires you to execute the configuration file in that repo on "
        "your local machine. Make sure you have read the code there to avoid malicious use, then set the option "
        "`trust_remote_code=True` to remove this error.",
        "trust_remote_code_required",
        {},
    ),
    (
        "https://github.com/chatchat-space/Langchain-Chatchat/issues/1376",
        "ValueError: Loading this model requires you to execute execute some code in that repo on your local "
        "machine. Make sure you have read the code at https://hf.co//home/sun/data/weishihao/LangChain/model to "
        "avoid malicious use, then set the option `trust_remote_code=True` to remove this error.",
        "trust_remote_code_required",
        {},
    ),
    (
        "https://github.com/vllm-project/vllm/issues/9515",
        "ValueError: Model architectures ['LlamaForCausalLM'] are not supported for now. Supported architectures: "
        "['AquilaModel', 'AquilaForCausalLM', 'ArcticForCausalLM']",
        "unsupported_architecture",
        {"architecture": "LlamaForCausalLM"},
    ),
    (
        "https://github.com/city96/ComfyUI_ExtraModels/issues/114",
        "ValueError: The checkpoint you are trying to load has model type `gemma2` but Transformers does not "
        "recognize this architecture. This could be because of an issue with the checkpoint, or because your "
        "version of Transformers is out of date.",
        "unsupported_architecture",
        {"architecture": "gemma2"},
    ),
    (
        "https://github.com/vllm-project/vllm/issues/3676",
        "ValueError: User-specified max_model_len (131072) is greater than the derived max_model_len "
        "(None=8192 in model's config.json). This may lead to incorrect model outputs or CUDA errors.",
        "unsupported_configuration",
        {"max_model_len": 131072, "derived_max_model_len": "None=8192 in model's config.json"},
    ),
]


@pytest.mark.parametrize("url,message,kind,details", REAL_MESSAGES, ids=[m[0].split("github.com/")[1] for m in REAL_MESSAGES])
def test_real_messages(url, message, kind, details):
    log = "INFO some start-up line\nWARNING a harmless warning\n" + message + "\n"
    info = classify_error(log, returncode=1)
    assert info.kind == kind, url
    for key, value in details.items():
        assert info.details[key] == value, (url, key)
    assert info.final == (kind in FINAL_KINDS)
    assert message.splitlines()[0][:60] in log  # the deciding line is the real one
    assert info.message and info.message in log


def test_root_cause_printed_last_wins():
    """vLLM v1 prints the engine core's root cause, then a generic wrapper; an earlier harmless
    trust_remote_code hint must not win over the OOM that follows it."""
    log = (
        "WARNING ... pass the argument `trust_remote_code=True` to avoid this warning\n"
        + REAL_MESSAGES[0][1]
        + "\nRuntimeError: Engine core initialization failed. See root cause above.\n"
    )
    assert classify_error(log).kind == "out_of_memory"


def test_timeout_wins_and_records_the_limit():
    info = classify_error(REAL_MESSAGES[0][1], timed_out=True, timeout_s=30)
    assert info.kind == "timeout" and info.details == {"timeout_s": 30.0} and not info.final


def test_unknown_keeps_the_log_tail_and_returncode():
    log = "line\n" * 2000 + "Segmentation fault (core dumped)\n"
    info = classify_error(log, returncode=-11)
    assert info.kind == "unknown" and not info.final
    assert info.message == "Segmentation fault (core dumped)"
    assert info.details == {"returncode": -11}
    assert log.endswith(info.log_tail) and 0 < len(info.log_tail) <= 4000


def test_worker_message_is_searched():
    info = classify_error("Traceback ...\n", message="OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. "
                          "GPU 0 has a total capacity of 79.19 GiB of which 3.06 MiB is free.")
    assert info.kind == "out_of_memory" and info.details["requested_bytes"] == 20 * MIB


def test_kinds_are_closed():
    assert FINAL_KINDS < set(KINDS)
    assert {"timeout", "unknown"}.isdisjoint(FINAL_KINDS)
