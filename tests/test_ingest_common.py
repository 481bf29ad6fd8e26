"""Number parsing, line streaming and run assembly shared by the log parsers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fitting.ingest import NoMeasurementsError, detect_framework, parse_log
from fitting.ingest._common import MAX_LINE_CHARS, Collector, convert, iter_lines, parse_decimal, parse_int


@pytest.mark.parametrize("text, expected", [
    ("14.96", Decimal("14.96")), ("0.90", Decimal("0.90")), ("158,656", Decimal(158656)),
    ("1,793,232", Decimal(1793232)), ("7", Decimal(7)), ("0.0", Decimal("0.0")),
])
def test_parse_decimal_is_exact(text, expected):
    value = parse_decimal(text)
    assert value == expected and str(value) == str(expected)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "-1", "1e308", "1E3", "1,23", "12,", ",5", "", "1.2.3",
                                  "9" * 41, " 1", "0x10", "१२"])
def test_parse_decimal_rejects_non_numbers(text):
    assert parse_decimal(text) is None


def test_parse_int_only_integral():
    assert parse_int("294,848") == 294848
    assert parse_int("12.5") is None
    assert parse_int("12.0") == 12


def test_unit_conversion_is_exact():
    # llama.cpp MiB to GiB: 16722.37 MiB / 1024 is exactly 16.330439453125 GiB
    assert convert(Decimal("16722.37"), "mib", "gib") == Decimal("16.330439453125")
    assert convert(Decimal("1.14"), "gib", "mib") == Decimal("1167.36")
    assert convert(Decimal("18.94"), "gb", "bytes") == Decimal(18_940_000_000)


def test_iter_lines_splits_carriage_returns_strips_colours_and_skips_giant_lines():
    text = "a\r\nb\rc\n\x1b[32mINFO\x1b[0m d\n" + "x" * (MAX_LINE_CHARS + 1) + "\ne"
    assert list(iter_lines(text)) == ["a", "b", "c", "INFO d", "e"]


def test_collector_splits_on_same_rank_and_folds_other_ranks():
    c = Collector()
    c.add("weights", Decimal("1.5"), "gib", rank="", line="a")
    c.add("weights", Decimal("1.5"), "gib", rank="worker 1", line="b")       # another rank: folded
    c.add("weights", Decimal("1.6"), "gib", rank="worker 2", line="c")       # differs: noted
    assert len(c.finish()) == 1
    assert "ranks_differ" in c.run.flags and any("1.6" in n for n in c.run.notes)
    c.add("weights", Decimal("2.5"), "gib", rank="", line="d")               # same rank again: new start
    runs = c.finish()
    assert [r.items["weights"].value for r in runs] == [Decimal("1.5"), Decimal("2.5")]


def test_collector_start_marker_only_splits_after_a_measurement():
    c = Collector()
    c.start()
    c.setting("tp", 2)
    c.start()  # no measurement yet: same run
    c.add("kv", Decimal(1), "gib", line="x")
    c.start()
    c.setting("tp", 4)
    assert len(c.runs) == 2 and c.runs[0].settings["tp"] == 2 and c.runs[1].settings["tp"] == 4
    assert len(c.finish()) == 1


def test_collector_sum_and_last_modes():
    c = Collector()
    c.add("kv:CUDA0", Decimal("160.00"), "mib", mode="sum", line="a")
    c.add("kv:CUDA0", Decimal("300.00"), "mib", mode="sum", line="b")   # second KV cache (SWA): adds up
    c.add("kv", Decimal("0.56"), "gib", mode="last", line="c")
    c.add("kv", Decimal("5.95"), "gib", mode="last", line="d")          # final pool replaces the provisional one
    (run,) = c.finish()
    assert [i.value for i in run.sums["kv:CUDA0"]] == [Decimal("160.00"), Decimal("300.00")]
    assert run.items["kv"].value == Decimal("5.95")


def test_detect_framework():
    assert detect_framework("INFO 01-16 09:40:00 worker.py:238] model weights take 19.86GiB") == "vllm"
    assert detect_framework("llama_kv_cache_init:      CUDA0 KV buffer size =    50.00 MiB") == "llamacpp"
    assert detect_framework("[TensorRT-LLM][INFO] Loaded engine size: 6214 MiB") == "trtllm"
    assert detect_framework("KV Cache is allocated. #tokens: 20480, K size: 0.12 GB, V size: 0.12 GB") == "sglang"
    assert detect_framework("INFO text_generation_router: Setting max batch total tokens to 19056") == "tgi"
    assert detect_framework("hello world") is None
    assert detect_framework(b"\x00\xff" * 100) is None


def test_log_units_are_recorded_as_the_framework_means_them():
    (vllm,) = parse_log("INFO 01-14 12:36:51 model_runner.py:1099] Loading model weights took 7.9692 GB")
    assert vllm["measured"] == {"weights_gib": 7.9692}  # vLLM's "GB" is bytes / 2**30
    assert "2**30" in vllm["measurement_notes"]
    (sglang,) = parse_log("KV Cache is allocated. #tokens: 20480, K size: 0.12 GB, V size: 0.12 GB")
    assert sglang["measured"]["kv_cache_gib"] == 0.24  # SGLang's "GB" is GiB too, K + V summed exactly
    (llama,) = parse_log("load_tensors:        CUDA0 model buffer size = 30658.12 MiB")
    assert llama["measured"] == {"weights_mib": 30658.12}


def test_overrides_fill_only_what_the_log_does_not_say():
    log = ("INFO 01-16 09:40:00 worker.py:238] the current vLLM instance can use total_gpu_memory (79.22GiB) x "
           "gpu_memory_utilization (0.90) = 71.29GiB\n"
           "INFO 01-16 09:40:00 worker.py:238] model weights take 19.86GiB; non_torch_memory takes 0.16GiB")
    (p,) = parse_log(log, overrides={"model": "meta-llama/Llama-3.2-11B-Vision", "gpu": "NVIDIA H100 80GB HBM3",
                                     "gpu_memory_gib": 80.0})
    assert p["model"]["id"] == "meta-llama/Llama-3.2-11B-Vision"
    assert p["gpu"] == {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.22}  # the log's figure is kept
    assert "command line said 80.0" in p["measurement_notes"]
    assert "model_unnamed" not in p["flags"]
    (bare,) = parse_log(log)
    assert bare["model"]["id"] is None and "model_unnamed" in bare["flags"] and "name" not in bare["gpu"]


def test_invalid_settings_are_left_out_not_written():
    (p,) = parse_log("$ vllm serve org/m -tp 0 --max-model-len 0\n"
                     "INFO worker.py:238] model weights take 1.00GiB")
    assert "parallel" not in p and "workload" not in p
    assert "not a valid value" in p["measurement_notes"]


def test_unknown_framework_name_is_an_error():
    with pytest.raises(ValueError, match="unknown framework"):
        parse_log("x", framework="ollama")
    with pytest.raises(NoMeasurementsError, match="no measurements found in x.log"):
        parse_log("nothing here", source_name="x.log")


def test_utf16_log_from_a_windows_redirect_is_read():
    text = "INFO 01-14 12:36:51 model_runner.py:1099] Loading model weights took 7.9692 GB\r\n"
    (p,) = parse_log(text.encode("utf-16"))
    assert p["measured"] == {"weights_gib": 7.9692}


def test_trtllm_kb_buffers_are_summed_in_mib():
    # TensorRT-LLM's MemoryCounters::bytesToString divides by 1024: "KB" is KiB, "MB" MiB
    (p,) = parse_log("[TensorRT-LLM][INFO] [MemUsageChange] Allocated 512.00 KB GPU memory for runtime buffers.\n"
                     "[TensorRT-LLM][INFO] [MemUsageChange] Allocated 180.30 MB GPU memory for decoder.")
    assert p["measured"] == {"other_mib": 180.8}
    assert "sum: other_mib = 0.50 + 180.30" in p["measurement_notes"]
