"""``python -m fitting.ingest``: files written, dry run, errors and exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from fitting.ingest.__main__ import main

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "fitting" / "schemas" / "profile-v1.schema.json")
                    .read_text(encoding="utf-8"))
TWO_STARTS = FIXTURES / "vllm" / "v064_peak_torch_two_starts.log"


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "fitting.ingest", "--help"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], check=False)
    assert result.returncode == 0
    for flag in ("--framework", "--out", "--dry-run", "--model", "--gpu", "--gpu-memory-gib"):
        assert flag in result.stdout


def test_writes_one_file_per_engine_start_with_provenance(tmp_path, capsys):
    assert main([str(TWO_STARTS), "--out", str(tmp_path)]) == 0
    files = sorted((tmp_path / "vllm").glob("*.json"))
    assert len(files) == 2
    data = TWO_STARTS.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    for index, path in enumerate(files):
        profile = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(profile, SCHEMA)
        assert path.stem == profile["profile_id"] == f"ingested-vllm-{digest[:12]}-{index}"
        prov = profile["provenance"]
        assert prov["kind"] == "ingested-log"
        assert prov["source_file"] == TWO_STARTS.name and prov["source_sha256"] == digest
        for line in prov["evidence"].splitlines():  # evidence = lines of the log (settings summarised)
            assert line.startswith("[settings] ") or line.removesuffix(" ...") in data.decode()
    # stable ids: a second run rewrites the same two files
    assert main([str(TWO_STARTS), "--out", str(tmp_path)]) == 0
    assert sorted((tmp_path / "vllm").glob("*.json")) == files
    assert not list((tmp_path / "vllm").glob("*.tmp"))


def test_dry_run_prints_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(FIXTURES / "llamacpp" / "b7342_server_cuda.log"), "--dry-run", "--out", str(out),
                 "--model", "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF", "--gpu-memory-gib", "39.39"]) == 0
    printed = capsys.readouterr().out
    profile = json.loads(printed)
    assert profile["model"]["id"] == "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF"
    assert profile["gpu"]["memory_gib"] == 39.39 and profile["gpu"]["name"] == "NVIDIA A100-PCIE-40GB"
    assert not out.exists()


@pytest.mark.parametrize("content", [b"just some text\nwith no framework at all\n", b"",
                                     b"INFO 01-01 00:00:00 worker.py:1] nothing about memory\n"])
def test_no_measurements_exit_1_and_no_file(tmp_path, capsys, content):
    log = tmp_path / "empty.log"
    log.write_bytes(content)
    assert main([str(log), "--out", str(tmp_path / "out")]) == 1
    assert f"no measurements found in {log}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_wrong_framework_gives_no_measurements(tmp_path, capsys):
    assert main([str(TWO_STARTS), "--framework", "llamacpp", "--out", str(tmp_path)]) == 1
    assert "no measurements found in" in capsys.readouterr().err


def test_mixed_files_write_the_good_ones_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.log"
    bad.write_text("nothing\n")
    assert main([str(bad), str(FIXTURES / "tgi" / "tgi_scheduler_v3.log"), "--out", str(tmp_path / "o")]) == 1
    assert len(list((tmp_path / "o" / "tgi").glob("*.json"))) == 1


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(TWO_STARTS), "--framework", "ollama"])
    assert exc.value.code == 2
    assert main([str(TWO_STARTS), "--gpu-memory-gib", "-3", "--dry-run"]) == 2
    assert main([str(tmp_path / "missing.log"), "--dry-run"]) == 2
    assert "cannot read" in capsys.readouterr().err
