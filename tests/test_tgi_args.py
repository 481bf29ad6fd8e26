"""TGI's launcher prints its settings as a pretty-printed ``Args {`` block (one field per
line, TGI 2.x/3.x) or on one line: both give the same settings."""

from __future__ import annotations

from pathlib import Path

from fitting.ingest import parse_log
from fitting.ingest.harvest import read_log

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "profiles" / "public"

ONE_LINE = ('2024-01-01T00:00:00Z  INFO text_generation_launcher: Args { model_id: "org/m", num_shard: Some(2), '
            'quantize: Some(Awq), cuda_memory_fraction: 0.9, max_batch_prefill_tokens: Some(4096) }\n'
            '2024-01-01T00:01:00Z  INFO text_generation_router: Setting max batch total tokens to 12345\n')
MULTI_LINE = ('2024-01-01T00:00:00Z  INFO text_generation_launcher: Args {\n    model_id: "org/m",\n'
              '    num_shard: Some(\n        2,\n    ),\n    quantize: Some(\n        Awq,\n    ),\n'
              '    cuda_memory_fraction: 0.9,\n    max_batch_prefill_tokens: Some(\n        4096,\n    ),\n}\n'
              '2024-01-01T00:01:00Z  INFO text_generation_router: Setting max batch total tokens to 12345\n')


def _settings(text):
    (p,) = parse_log(text, framework="tgi")
    return (p["model"]["name_as_given"], p["parallel"]["tp"], p["precision"]["quantization"],
            p["engine_settings"]["cuda_memory_fraction"], p["workload"]["max_num_batched_tokens"],
            p["measured"]["kv_cache_tokens"])


def test_pretty_printed_args_equal_one_line_args():
    assert _settings(ONE_LINE) == _settings(MULTI_LINE) == ("org/m", 2, "awq", 0.9, 4096, 12345)


def test_real_pretty_printed_block_gives_the_shard_count():
    src = read_log(PUBLIC / "tgi" / "logs" / "h5-gemma-3-27b-it-2xrtxa6000-tp2-tgi-latest-2025-07.log", PUBLIC)
    (p,) = parse_log(src.body, framework="tgi")
    assert p["parallel"]["tp"] == 2 and p["measured"]["kv_cache_tokens"] == 52125
