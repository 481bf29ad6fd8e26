"""Garbage in: the parsers never crash and never write a number the log does not contain.

A profile number is *explained* when it is a number printed in the input, an exact
power-of-two unit conversion of one (MiB <-> GiB), an exact sum that the profile's notes
spell out (``sum: field = a + b``) with explained addends, or the count of GPU devices
named in the input.
"""

from __future__ import annotations

import json
import random
import re
import time
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fitting.ingest import NoMeasurementsError, parse_log

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "fitting" / "schemas" / "profile-v1.schema.json")
                    .read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
LOGS = [p.read_bytes() for p in sorted(FIXTURES.rglob("*.log"))]

_NUMBERS = (re.compile(r"[0-9]+(?:\.[0-9]+)?"), re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?"))
_NUMBER_B = re.compile(rb"[0-9][0-9,]*(?:\.[0-9]+)?")
_SUM = re.compile(r"sum: (\w+) = ([0-9. +]+)")
_DEVICE = re.compile(r"\b(?:CUDA|ROCm|HIP|Vulkan|SYCL|MUSA|CANN|OpenCL|Kompute)[0-9]{1,3}\b|\bMetal\b|\bVRAM\b")


def _input_numbers(text):
    return {float(Decimal(m.group(0).replace(",", ""))) for pattern in _NUMBERS for m in pattern.finditer(text)}


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(obj, list):
        for value in obj:
            yield from _leaves(value, path)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _printed(value, numbers):
    return any(value * factor in numbers for factor in (1, 1024, 1 / 1024))


def _explained(profile, path, value, numbers, text):
    if path == ("schema_version",):
        return True
    if _printed(value, numbers):
        return True
    if path == ("engine_settings", "gpu_memory_utilization") and value == 0.9 and "vLLM's default" in (
            profile.get("measurement_notes") or ""):
        return True  # a utilization the 'non-default args' line does not list is vLLM's default, said in the notes
    if path == ("gpu", "count"):
        return value <= len(set(_DEVICE.findall(text))) or value in numbers
    if path[0] == "measured":
        for field, addends in _SUM.findall(profile.get("measurement_notes") or ""):
            if field == path[1]:
                parts = [Decimal(a) for a in addends.split(" + ")]
                return float(sum(parts)) == value and all(_printed(float(a), numbers) for a in parts)
    return False


def check(data):
    """Parse ``data``; every profile must validate and every number be explained."""
    try:
        profiles = parse_log(data, source_name="mutated.log")
    except NoMeasurementsError:
        return []
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    numbers = _input_numbers(text)
    for profile in profiles:
        errors = list(VALIDATOR.iter_errors(profile))
        assert not errors, errors[0].message
        for path, value in _leaves(profile):
            assert _explained(profile, path, value, numbers, text), f"{'/'.join(path)} = {value!r} not in the input"
    return profiles


@pytest.mark.parametrize("data", LOGS, ids=[p.name for p in sorted(FIXTURES.rglob("*.log"))])
def test_fixture_numbers_are_all_explained(data):
    assert check(data)


_BAD_NUMBERS = [b"nan", b"NaN", b"inf", b"-inf", b"-1", b"-0.5", b"1e308", b"9" * 60, b"99999999999999999999.99",
                b"0", b"0.00", b"1,2", b""]


@st.composite
def mutated_logs(draw):
    lines = draw(st.sampled_from(LOGS)).split(b"\n")
    for _ in range(draw(st.integers(0, 10))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "truncate", "garbage", "number", "number", "swap"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "garbage":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.binary(min_size=1, max_size=40)) + lines[i][at:]
        elif op == "number":
            spans = [m.span() for m in _NUMBER_B.finditer(lines[i])]
            if spans:
                start, end = draw(st.sampled_from(spans))
                lines[i] = lines[i][:start] + draw(st.sampled_from(_BAD_NUMBERS)) + lines[i][end:]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


@settings(max_examples=1000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_logs())
def test_mutated_real_logs_never_crash_nor_invent_values(data):
    check(data)


@pytest.mark.parametrize("line", [
    "INFO 01-14 12:36:51 model_runner.py:1099] Loading model weights took nan GB",
    "INFO 01-14 12:36:51 model_runner.py:1099] Model loading took inf GiB and 3.6 seconds",
    "(EngineCore pid=1) INFO [gpu_worker.py:298] Available KV cache memory: -1.00 GiB",
    "INFO executor_base.py:95] # GPU blocks: nan, # CPU blocks: 2048",
    "llama_kv_cache:      CUDA0 KV buffer size =  NaN MiB",
    "load_tensors:        CUDA0 model buffer size = 1e308 MiB",
    "KV Cache is allocated. #tokens: inf, K size: nan GB, V size: -2 GB",
    "[TensorRT-LLM][INFO] [MemUsageChange] Allocated nan GiB for max tokens in paged KV cache (inf).",
    "2024-05-07T12:39:22Z  INFO text_generation_router: Setting max batch total tokens to -5",
    "INFO 12-13 worker.py:243] model weights take   14.",  # truncated mid-number
])
def test_nan_inf_negative_and_truncated_numbers_give_nothing(line):
    with pytest.raises(NoMeasurementsError):
        parse_log(line)


def test_bad_number_next_to_good_ones_keeps_only_the_good_ones():
    (p,) = check("INFO 01-16 09:40:00 worker.py:238] model weights take nanGiB; non_torch_memory takes 0.16GiB; "
                 "PyTorch activation peak memory takes infGiB; the rest of the memory reserved for KV Cache is "
                 "14.65GiB.")
    assert p["measured"] == {"non_torch_gib": 0.16, "kv_cache_gib": 14.65}


def test_binary_data_is_no_measurement():
    data = random.Random(0).randbytes(1 << 20)
    with pytest.raises(NoMeasurementsError):
        parse_log(data, source_name="random.bin")
    for framework in ("vllm", "llamacpp", "sglang", "trtllm", "tgi"):
        with pytest.raises(NoMeasurementsError):
            parse_log(data, framework)


@pytest.mark.parametrize("kind", ["serving log", "random bytes", "one huge line"])
def test_fifty_megabyte_input_stays_fast(kind):
    rng = random.Random(1)
    size = 50 * 2**20
    if kind == "serving log":  # a long vLLM serving log with one engine start in the middle
        start = (FIXTURES / "vllm" / "v1_actual_usage_full_log.log").read_bytes()
        stats = [(f"(APIServer pid=1671) INFO 09-04 01:{m:02d}:{s:02d} [loggers.py:123] Engine 000: Avg prompt "
                  f"throughput: {rng.random() * 900:.1f} tokens/s, Avg generation throughput: {rng.random() * 90:.1f}"
                  f" tokens/s, Running: {rng.randrange(9)} reqs, Waiting: 0 reqs, GPU KV cache usage: "
                  f"{rng.random() * 9:.1f}%, Prefix cache hit rate: 0.0%\n").encode() for m in range(60) for s in range(60)]
        half = b"".join(stats) * (size // 2 // sum(map(len, stats)) + 1)
        data = half[: size // 2] + b"\n" + start + half[: size // 2]
    elif kind == "random bytes":
        data = rng.randbytes(size)
    else:
        data = b"model weights take 1" * (size // 20)
    began = time.perf_counter()
    try:
        profiles = parse_log(data, source_name="big.log")
    except NoMeasurementsError:
        profiles = []
    elapsed = time.perf_counter() - began
    assert elapsed < 30, f"{kind}: {elapsed:.1f} s"
    assert len(profiles) == (1 if kind == "serving log" else 0)


def test_a_utilization_the_non_default_args_do_not_list_is_the_default():
    line = ("(APIServer pid=1) INFO 09-03 04:36:09 [utils.py:326] non-default args: {'model': 'm', "
            "'max_model_len': 4096}\n(EngineCore_0 pid=2) INFO 09-03 04:42:46 [gpu_worker.py:276] Available KV cache "
            "memory: 11.03 GiB\n")
    (p,) = parse_log(line, "vllm")
    assert p["engine_settings"]["gpu_memory_utilization"] == 0.9 and "vLLM's default" in p["measurement_notes"]
    (p,) = parse_log(line.replace("'max_model_len': 4096", "'gpu_memory_utilization': 0.5"), "vllm")
    assert p["engine_settings"]["gpu_memory_utilization"] == 0.5


def test_older_trtllm_runtime_kv_lines():
    """TensorRT-LLM 0.8-0.9 (gptManager) prints its pool in bytes and tokens, with no
    [MemUsageChange] KV line (a Triton start of Llama-3-8B on an RTX 3090)."""
    log = ("[TensorRT-LLM][INFO] Loaded engine size: 15319 MiB\n"
           "[TensorRT-LLM][INFO] Allocate 4143972352 bytes for k/v cache.\n"
           "[TensorRT-LLM][INFO] Using 31616 total tokens in paged KV cache, and 16 blocks per sequence\n")
    (p,) = parse_log(log, "trtllm")
    assert p["measured"] == {"weights_mib": 15319.0, "kv_cache_bytes": 4143972352.0, "kv_cache_tokens": 31616}


def test_launcher_prefixed_records_are_not_glued_to_a_settings_line():
    """Unsloth's launcher prefixes every vLLM line with "vLLM STDOUT:": the lower-case start
    must not make the next record a hard-wrapped continuation of the args line (which lost
    tp, dtype and the later figures)."""
    log = ("vLLM STDOUT: INFO 02-13 15:00:42 api_server.py:840] vLLM API server version 0.7.3\n"
           "vLLM STDOUT: INFO 02-13 15:00:42 api_server.py:841] args: Namespace(model='Qwen/Qwen2.5-7B-Instruct', "
           "tensor_parallel_size=2, gpu_memory_utilization=0.9)\n"
           "vLLM STDOUT: INFO 02-13 15:01:07 gpu_model_runner.py:872] Loading model weights took 7.1 GB\n"
           "vLLM STDOUT: INFO 02-13 15:01:40 kv_cache_utils.py:407] # GPU blocks: 33660\n")
    (profile,) = parse_log(log, framework="vllm")
    assert profile["parallel"]["tp"] == 2
    assert profile["measured"] == {"weights_gib": 7.1, "num_gpu_blocks": 33660}
    # a genuinely wrapped args line is still re-joined
    wrapped = log.replace("tensor_parallel_size=2, gpu_mem", "tensor_parallel_size=2, gpu_mem\n")
    (profile,) = parse_log(wrapped, framework="vllm")
    assert profile["engine_settings"]["gpu_memory_utilization"] == 0.9
