"""Regenerate ``fitting/data/registry.yaml`` from ``../shared/data/model_configs.yaml``.

The registry shipped in the package is a reproducible copy of the shared reference file:
every model's figures, sources, notes, stated parameter counts and verification level
are copied unchanged; this script only

* separates the architecture keys (``config``) from the provenance keys;
* parses the stated parameter counts into integers next to the original text;
* adds ``trust_remote_code`` (with the reason) and a machine-readable
  ``native_quantization`` for checkpoints that ship quantized weights;
* fills the one architecture field a model lacks only where its own sources give it
  (``filled_fields`` says which and why), and marks an entry without dimensions as
  ``architecture_available: false``;
* appends the few aliases listed in :data:`EXTRA_ALIASES`, each with its source.

Usage::

    python -m fitting.build_registry            # rewrite fitting/data/registry.yaml
    python -m fitting.build_registry --check    # exit 1 if the shipped file is stale
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["build_registry", "parse_param_count", "main", "DEFAULT_SOURCE", "DEFAULT_OUTPUT"]

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "model_configs.yaml"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data" / "registry.yaml"

#: provenance keys of a model entry (everything else is architecture).
_PROVENANCE = ("verification", "field_sources", "notes", "sources", "params", "weight_format", "layer_pattern")

_DEEPSEEK_V2_CODE = (
    "official repo ships configuration_deepseek.py / modeling_deepseek.py referenced by auto_map (Hugging Face tag "
    "'custom_code'; tree https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite/tree/426476613094d0c934dbbae238da676b5ff38ce5); "
    "vLLM and SGLang carry native implementations"
)

#: models whose official repos need custom code, with the reason. Every other model is
#: a native transformers model type (reason generated below).
TRUST_REMOTE_CODE: dict[str, str] = {
    "moonshotai/Kimi-K2-Instruct": (
        "model_type kimi_k2 is not a transformers model type: the repo's auto_map points at its own DeepSeek-V3 code "
        "(architectures DeepseekV3ForCausalLM) and the tokenizer is custom; loaders pass trust_remote_code=True "
        "(e.g. github mfarisadip/Kimi-K2-Mini data/load_model.py; exo src/exo/worker/engines/mlx/constants.py: "
        "'Kimi requires trust_remote_code=True')"
    ),
    "deepseek-ai/DeepSeek-V3": (
        "official repo ships configuration_deepseek.py / modeling_deepseek.py referenced by auto_map (Hugging Face "
        "tag 'custom_code', https://huggingface.co/deepseek-ai/DeepSeek-V3/tree/ec67248f61244f350422cdfd2e78258af58edff9); "
        "vLLM and SGLang carry native implementations"
    ),
    "deepseek-ai/DeepSeek-V2-Lite": _DEEPSEEK_V2_CODE,
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct": "same DeepSeek-V2 custom code (model_type deepseek_v2); " + _DEEPSEEK_V2_CODE,
    "deepseek-ai/DeepSeek-V2.5": "same DeepSeek-V2 custom code (model_type deepseek_v2); " + _DEEPSEEK_V2_CODE,
}

_NATIVE_NOTES = {
    "phi": "native transformers model_type phi (legacy phi-msft revisions needed custom code; current config is native)",
    "falcon": "native transformers model_type falcon (legacy RefinedWebModel revisions shipped custom code)",
    "phi3": "config keeps an auto_map, but transformers >= 4.40 implements phi3 natively",
}

#: checkpoints whose released weights are quantized: machine key for fitting.quantization.
NATIVE_QUANTIZATION: dict[str, tuple[str, str]] = {
    "deepseek-ai/DeepSeek-V3": ("fp8-block128", "weight_format: FP8 e4m3 with 128x128 block scales"),
    "moonshotai/Kimi-K2-Instruct": (
        "fp8-block128",
        "notes: released weights are block-FP8 per the model card (not captured in the abridged config copy); "
        "128x128 blocks assumed as in DeepSeek-V3, whose code it uses",
    ),
    "openai/gpt-oss-20b": ("mxfp4", "weight_format: MXFP4 for MoE expert weights; attention, router, embeddings bf16"),
    "openai/gpt-oss-120b": ("mxfp4", "weight_format: MXFP4 for MoE expert weights; attention, router, embeddings bf16"),
    "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic": (
        "fp8-per-channel", "weight_format: linear weights FP8 per output channel; lm_head not quantized"),
    "Qwen/Qwen3-235B-A22B-FP8": ("fp8-block128", "card: fine-grained fp8 quantization with block size of 128"),
}

#: architecture fields filled from the entry's own sources (never from memory).
FILLED_FIELDS: dict[str, dict[str, tuple[Any, str]]] = {
    "bigcode/octocoder": {
        "vocab_size": (
            49152,
            "StarCoder base value from this entry's sources A-C (its notes: 'StarCoder base = 49152 (A-C)'); "
            "octocoder's own config.json was not found, fine-tunes may add a few tokens",
        ),
    },
}

#: aliases not in the shared file, each backed by a source.
EXTRA_ALIASES: dict[str, dict[str, Any]] = {
    "Qwen/Qwen2-7B-Instruct": {
        "target": "Qwen/Qwen2-7B",
        "verification": "full",
        "differs": "max_position_embeddings (see overrides); eos 151645",
        "overrides": {"max_position_embeddings": 32768},
        "sources": [
            {
                "ref": "github:mlc-ai/mlc-llm python/mlc_llm/model/model_preset.py @01ced331a9e155c5ba4e7625b027a51bee611450 key qwen2_7b",
                "kind": "verbatim copy of the Instruct config (source C of the Qwen/Qwen2-7B entry)",
                "note": "same dims as the base entry; max_position_embeddings 32768, eos 151645",
            }
        ],
        "added_by": "fitting.build_registry (not in model_configs.yaml aliases; backed by the target entry's source C)",
    },
    "Qwen/Qwen3-235B-A22B-FP8": {
        "target": "Qwen/Qwen3-235B-A22B",
        "verification": "partial",
        "differs": "weights are block-FP8 (see weight_format); architecture identical",
        "weight_format": "FP8 e4m3, fine-grained, block size 128 (quantization_config in config.json)",
        "sources": [
            {
                "ref": "github:akash-network/awesome-akash Qwen3-235B-A22B-FP8/README.md @2199af2993737009b86d6424d705f30a290e7b86",
                "kind": "copy of the official model card",
                "note": "'This repo contains the FP8 version of Qwen3-235B-A22B': 235B total / 22B active, 94 layers, "
                        "64 Q / 4 KV heads, 128 experts, 8 activated; 'fine-grained fp8 quantization with block size "
                        "of 128'; max_position_embeddings 40960",
            }
        ],
        "added_by": "fitting.build_registry (card copy, config.json itself not read)",
    },
}

_COUNT_RE = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([KMBT]?)\b")
_SCALE = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parse_param_count(text: Any) -> int | None:
    """Leading count of a stated-parameters string: ``'13,016,279,168'``, ``'7.24B (...)'``, ``'1T'``.

    Returns None when the text does not start with a number.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return int(text)
    m = _COUNT_RE.match(str(text))
    if not m:
        return None
    return int(round(float(m.group(1).replace(",", "")) * _SCALE[m.group(2)]))


def _params(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    out: dict[str, Any] = {}
    for key in ("total", "active", "non_embedding", "mtp_extra"):
        if key in raw:
            out[key] = parse_param_count(raw[key])
            out[f"{key}_text"] = str(raw[key])
    for key, value in raw.items():
        if key not in ("total", "active", "non_embedding", "mtp_extra"):
            out[key] = value
    return out


def _trust(model_id: str, model_type: str | None) -> tuple[bool, str]:
    if model_id in TRUST_REMOTE_CODE:
        return True, TRUST_REMOTE_CODE[model_id]
    if model_type in _NATIVE_NOTES:
        return False, _NATIVE_NOTES[model_type]
    if model_type is None:
        return False, "architecture class Glm4ForCausalLM is native in transformers (>= 4.51)"
    return False, f"native transformers model_type {model_type}"


def _model_entry(model_id: str, src: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in src.items() if k not in _PROVENANCE}
    entry: dict[str, Any] = {}
    filled = FILLED_FIELDS.get(model_id, {})
    for key, (value, why) in filled.items():
        if key in config:
            raise ValueError(f"{model_id}: filled field {key} is present in the source")
        config[key] = value
    entry["architecture_available"] = "hidden_size" in config
    entry["config"] = config
    if filled:
        entry["filled_fields"] = {k: why for k, (_, why) in filled.items()}
    trust, why = _trust(model_id, src.get("model_type"))
    entry["trust_remote_code"] = trust
    entry["trust_remote_code_reason"] = why
    entry["weight_format"] = src.get("weight_format")
    nq = NATIVE_QUANTIZATION.get(model_id)
    entry["native_quantization"] = nq[0] if nq else None
    if nq:
        entry["native_quantization_reason"] = nq[1]
    entry["params"] = _params(src.get("params"))
    for key in ("verification", "layer_pattern", "notes", "field_sources", "sources"):
        if key in src:
            entry[key] = src[key]
    return entry


def _alias_entry(alias_id: str, src: dict[str, Any]) -> dict[str, Any]:
    entry = dict(src)
    nq = NATIVE_QUANTIZATION.get(alias_id)
    entry["native_quantization"] = nq[0] if nq else None
    if nq:
        entry["native_quantization_reason"] = nq[1]
    return entry


def build_registry(source: Path = DEFAULT_SOURCE) -> dict[str, Any]:
    """Registry document built from ``source`` (a model_configs.yaml)."""
    raw_bytes = Path(source).read_bytes()
    data = yaml.safe_load(raw_bytes)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of model ids")
    aliases_src = data.get("aliases") or {}
    models = {mid: _model_entry(mid, body) for mid, body in data.items() if mid != "aliases"}
    aliases = {aid: _alias_entry(aid, body) for aid, body in aliases_src.items()}
    for aid, body in EXTRA_ALIASES.items():
        if aid in aliases or aid in models:
            raise ValueError(f"extra alias {aid} already exists in {source}")
        aliases[aid] = _alias_entry(aid, body)
    for aid, body in aliases.items():
        if body["target"] not in models:
            raise ValueError(f"{source}: alias {aid} targets unknown model {body['target']}")
    return {
        "schema_version": 1,
        "generated_by": "python -m fitting.build_registry",
        "source": "../shared/data/model_configs.yaml",
        "source_sha256": hashlib.sha256(raw_bytes).hexdigest(),
        "models": models,
        "aliases": aliases,
    }


_HEADER = """\
# GENERATED by `python -m fitting.build_registry` from ../shared/data/model_configs.yaml -- do not edit by hand.
# Figures, sources, notes and stated parameter counts are copied unchanged from that file (read its header
# for the source disagreements); `config` holds the architecture keys, `params` the stated counts parsed to
# integers next to their original text. Added here: trust_remote_code (+ reason), native_quantization,
# filled_fields (from the entry's own sources), and the aliases marked `added_by`.
"""


def render(doc: dict[str, Any]) -> str:
    """YAML text of a registry document (header comment + safe_dump)."""
    return _HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; package data must be world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """CLI: rebuild (or ``--check``) the packaged registry."""
    parser = argparse.ArgumentParser(prog="python -m fitting.build_registry", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="model_configs.yaml to read")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="registry.yaml to write")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if --output is not up to date")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"{args.source}: not found (pass --source)", file=sys.stderr)
        return 2
    text = render(build_registry(args.source))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output}: out of date; run python -m fitting.build_registry", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date")
        return 0
    _atomic_write(args.output, text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
