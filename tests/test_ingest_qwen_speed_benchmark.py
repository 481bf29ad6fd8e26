"""Qwen speed-benchmark pages (profiles/public/transformers/reports/qwen*-speed-benchmark.rst) -> profiles.

The committed profiles equal a fresh conversion; the stored page is the public file byte for
byte; rows reproduce the printed figures exactly (GiB, sum over the row's GPUs); blank table
cells are carried down; only the "(Transformer)" tables are read; bad input names the file
and the line; the converters sharing profiles/public never remove each other's files.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from fitting.data.transformers_settings import transformers_settings_from_profile
from fitting.ingest.optimum_benchmark import convert_reports, write_reports
from fitting.ingest.optimum_benchmark import is_ours as is_optimum
from fitting.ingest.qwen_speed_benchmark import (CONVERTER, QwenSpeedError, convert_pages, is_ours, main, parse_rows,
                                                 read_page, write_pages)

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "profiles" / "public"
REPORTS = PUBLIC / "transformers" / "reports"
PAGE = "qwen2.5-speed-benchmark"
#: git blob id of docs/source/benchmark/speed_benchmark.rst at QwenLM/Qwen2.5@a912d239c2d0e2e5d10bb8d02e6f5685edb43e68
BLOB = "8585362e778f33e544c83ecb2d0daa92760cbcbf"


@pytest.fixture(scope="module")
def converted():
    profiles, problems = convert_pages(PUBLIC)
    assert not problems, problems
    return profiles


def _row(profiles, model_id, input_len):
    (p,) = [p for p in profiles if p["model"]["id"] == model_id and p["workload"]["input_len"] == input_len]
    return p


def _copy_root(tmp_path):
    root = tmp_path / "public"
    (root / "transformers" / "reports").mkdir(parents=True)
    for suffix in (".rst", ".source.yaml"):
        shutil.copy2(REPORTS / f"{PAGE}{suffix}", root / "transformers" / "reports" / f"{PAGE}{suffix}")
    return root


def test_stored_page_is_the_public_file_byte_for_byte():
    raw = (REPORTS / f"{PAGE}.rst").read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == BLOB


def test_committed_profiles_match_a_fresh_conversion(converted, tmp_path):
    write_pages(converted, tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("*/*.json")}
    committed = {p.relative_to(PUBLIC): p.read_bytes() for p in PUBLIC.glob("*/*.json") if is_ours(p)}
    assert set(committed) == set(fresh), "run: python -m fitting.ingest.qwen_speed_benchmark --root profiles/public"
    assert all(committed[k] == fresh[k] for k in fresh), "run: python -m fitting.ingest.qwen_speed_benchmark"


def test_every_transformer_row_becomes_one_profile(converted):
    # 7 sizes x 4 quantizations x 4 input lengths; the vLLM tables (no memory column) are not read
    assert len(converted) == 112
    assert {p["workload"]["input_len"] for p in converted} == {1, 6144, 14336, 30720}
    assert {p["model"]["id"] for p in converted if "quantization" not in p["precision"]} == {
        f"Qwen/Qwen2.5-{s}-Instruct" for s in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")}
    for p in converted:
        assert p["framework"] == "transformers" and p["kv_cache_mode"] == "growing"
        assert p["workload"]["batch_size"] == 1 and p["workload"]["output_len"] == 2048
        assert p["workload"]["context_len"] == p["workload"]["input_len"] + 2048
        assert p["workload"]["phase"] == "generate" and p["gpu"]["name"] == "A100-80GB"
        prov = p["provenance"]
        assert prov["converter"] == CONVERTER and prov["kind"] == "public-log"
        assert prov["source_file"] == f"profiles/public/transformers/reports/{PAGE}.rst"
        assert prov["url"].startswith("https://github.com/QwenLM/Qwen2.5/blob/a912d239c2d0e2e5d10bb8d02e6f5685edb43e68/")
        assert list(p["measured"]) == ["peak_allocated_gib"] and "unit_base_inferred" in p["flags"]
        s = transformers_settings_from_profile({"framework_version": p["framework_version"], "series": p["series"],
                                                "measurement_notes": p["measurement_notes"],
                                                "attention_impl": p["engine_settings"]["attention_impl"],
                                                "quantization": p["precision"].get("quantization"),
                                                "phase": p["workload"]["phase"]})
        assert (s["version"], s["mode"], s["attn_implementation"], s["measured"]) == (
            "4.46.0", "generate", "flash_attention_2", "allocated")


def test_rows_reproduce_the_printed_figures(converted):
    p = _row(converted, "Qwen/Qwen2.5-0.5B-Instruct", 1)
    assert p["measured"]["peak_allocated_gib"] == 0.97 and p["precision"] == {"dtype": "bfloat16",
                                                                               "kv_cache_dtype": "bfloat16"}
    assert p["measured_scope"] == "per_gpu" and p["gpu"]["count"] == 1 and "parallel" not in p
    # blank Model / Input Length cells carried down from the rows above
    p = _row(converted, "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8", 6144)
    assert p["measured"]["peak_allocated_gib"] == 9.43 and p["precision"] == {"quantization": "gptq-int8"}
    assert "auto_gptq 0.6.0+cu1210 (the row's Note)" in p["framework_version"]
    assert p["provenance"]["source_lines"] == [296]
    p = _row(converted, "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", 1)
    assert p["measured"]["peak_allocated_gib"] == 5.52 and "AutoGPTQ 0.7.1+cu121" in p["framework_version"]
    assert _row(converted, "Qwen/Qwen2.5-7B-Instruct-AWQ", 1)["measured"]["peak_allocated_gib"] == 5.39
    assert _row(converted, "Qwen/Qwen2.5-7B-Instruct", 6144)["measured"]["peak_allocated_gib"] == 15.38
    # several GPUs: the printed figure is the sum over them (device_map 'auto' split)
    p = _row(converted, "Qwen/Qwen2.5-72B-Instruct", 14336)
    assert p["measured"]["peak_allocated_gib"] == 149.14 and p["gpu"]["count"] == 3
    assert p["measured_scope"] == "sum_over_gpus" and p["parallel"] == {"pp": 3}


def test_bad_input_names_the_file_and_line(tmp_path):
    text = ("-  7B (Transformer)\n\n| Model | Input Length | Quantization | GPU Num | Speed(tokens/s) | Note |\n")
    with pytest.raises(QwenSpeedError, match=r"line 3: table of section 7B without"):
        parse_rows(text, "page.rst")
    text = ("-  7B (Transformer)\n"
            "| Model | Input Length | Quantization | GPU Num | Speed(tokens/s) | GPU Memory(GB) |\n"
            "| Qwen2.5-7B-Instruct | 1 | FP8 | 1 | 9.0 | 9.0 |\n")
    with pytest.raises(QwenSpeedError, match=r"line 3: unknown Quantization 'FP8'"):
        parse_rows(text, "page.rst")
    # vLLM tables are skipped; a row with no figure is listed, not converted
    text = ("-  7B (vLLM)\n| Model | Input Length | Quantization | GPU Num | Speed(tokens/s) |\n| x | 1 | BF16 | 1 | 2 |\n"
            "-  7B (Transformer)\n"
            "| Model | Input Length | Quantization | GPU Num | Speed(tokens/s) | GPU Memory(GB) |\n"
            "| Qwen2.5-7B-Instruct | 1 | BF16 | 1 | OOM | OOM |\n")
    rows = parse_rows(text)
    assert [(r.line, r.memory) for r in rows] == [(6, "OOM")]
    root = _copy_root(tmp_path)
    side = root / "transformers" / "reports" / f"{PAGE}.source.yaml"
    side.write_text(side.read_text(encoding="utf-8").replace("gpu: A100-80GB", "gpu: Z9000"), encoding="utf-8")
    with pytest.raises(QwenSpeedError, match=r"source.yaml: gpu: 'Z9000' is not in the GPU table"):
        read_page(root / "transformers" / "reports" / f"{PAGE}.rst", root)


def test_converters_sharing_the_folder_keep_each_others_files(tmp_path, capsys):
    root = _copy_root(tmp_path)
    for suffix in (".report", ".source.yaml"):
        shutil.copy2(REPORTS / f"cuda_pytorch_llama{suffix}", root / "transformers" / "reports" / f"x{suffix}")
    assert main(["--root", str(root)]) == 0
    ours = sorted(p.name for p in (root / "transformers").glob("*.json") if is_ours(p))
    profiles, problems = convert_reports(root)
    assert not problems
    write_reports(profiles, root)
    assert sorted(p.name for p in (root / "transformers").glob("*.json") if is_ours(p)) == ours
    assert len(ours) == 112 and sum(is_optimum(p) for p in (root / "transformers").glob("*.json")) == 2
    assert main(["--root", str(root)]) == 0
    assert sum(is_optimum(p) for p in (root / "transformers").glob("*.json")) == 2
    assert "112 profile(s) from 1 page(s)" in capsys.readouterr().out
