"""Qwen speed-benchmark reports -> public transformers profiles: ``python -m fitting.ingest.qwen_speed_benchmark``.

Qwen publishes, per release, a "Speed Benchmark" page: for each model size and
quantization (BF16, GPTQ-Int8, GPTQ-Int4, AWQ) the generation speed and the GPU memory of
one Hugging Face transformers ``generate()`` run at batch size 1 for several input lengths.
The page source is kept **verbatim** (byte for byte, as the repository holds it) under
``profiles/public/transformers/reports/<name>.rst``; beside it lies a reviewed sidecar
``<name>.source.yaml``:

``url`` (required)
    permalink of the page source at the commit it was copied from;
``date``
    when the figures were published;
``script``
    permalink of the benchmark script whose code says what the memory column measures;
``gpu`` (required)
    the GPU the page states (a name :func:`fitting.data.gpus.find_gpu` knows);
``framework_version`` (required)
    transformers / torch / flash-attn versions the page states;
``gptq_version`` / ``awq_version``
    the quantization libraries the page states (a row's Note ``auto_gptq==X`` overrides);
``flags``
    profile flags (list) for every row;
``notes``
    free text: how the measure, unit, date and model ids were established.

Only the "(Transformer)" tables are read (the vLLM tables carry no memory). One profile per
table row with a memory figure (Qwen2.5 page, ``speed_benchmark_transformers.py``):

* the process loads the model (``torch_dtype='auto'``, ``device_map='auto'`` over the
  row's ``GPU Num`` GPUs, ``attn_implementation='flash_attention_2'``), builds a batch of 1
  prompt of exactly ``Input Length`` tokens and runs one ``generate()`` with
  ``max_new_tokens = min_length - input = 2048``: ``workload.phase = "generate"``,
  ``output_len`` 2048, ``context_len`` = input + 2048;
* ``GPU Memory(GB)`` = the sum over the visible GPUs of ``torch.cuda.max_memory_allocated``
  (never reset: peak since process start, loading included) / 1024**3, so GiB: stored as
  ``peak_allocated_gib`` exactly as printed; several GPUs give ``measured_scope =
  "sum_over_gpus"`` and ``parallel.pp`` = the GPU count (accelerate's sequential split);
* model id ``Qwen/<Model>`` for BF16, ``Qwen/<Model>-GPTQ-Int8`` / ``-GPTQ-Int4`` /
  ``-AWQ`` for the quantized rows (Qwen's official repositories); ``precision.dtype``
  ``bfloat16`` for BF16 rows and null (the checkpoint's own ``torch_dtype``, not stated)
  for the quantized ones; quantization ``gptq-int8`` / ``gptq-int4`` / ``awq-int4`` (group
  size not stated by the page).

Rows without a number in the memory column (OOM, "-") are skipped and listed. Files this
converter wrote before and no longer produces are removed; other converters' files are
never touched.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from fitting.data.gpus import find_gpu
from fitting.data.profiles import ProfileError, profile_converter, validate_profile, write_converter_output
from fitting.version import __version__

__all__ = ["CONVERTER", "QwenSpeedError", "Row", "convert_page", "convert_pages", "main", "parse_rows",
           "read_page", "write_pages"]

CONVERTER = f"fitting.ingest.qwen_speed_benchmark {__version__}"
FRAMEWORK = "transformers"
REPORTS_DIR = "reports"
PAGE_GLOB = "qwen*-speed-benchmark.rst"
SIDECAR_SUFFIX = ".source.yaml"
SIDECAR_KEYS = ("url", "date", "script", "gpu", "framework_version", "gptq_version", "awq_version", "flags", "notes")
REQUIRED_KEYS = ("url", "gpu", "framework_version")

#: generate() length of every run (the page's notes and the script's GENERATE_LENGTH_PER_EXPERIMENT)
NEW_TOKENS = 2048
#: Quantization column -> (model id suffix, precision.quantization, library key in the sidecar)
QUANTIZATIONS = {
    "BF16": ("", None, None),
    "GPTQ-Int8": ("-GPTQ-Int8", "gptq-int8", "gptq_version"),
    "GPTQ-Int4": ("-GPTQ-Int4", "gptq-int4", "gptq_version"),
    "AWQ": ("-AWQ", "awq-int4", "awq_version"),
}
_SECTION = re.compile(r"^-\s+(\S+)\s+\((Transformer|vLLM)\)\s*$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_LIB_NOTE = re.compile(r"^(auto_gptq|autoawq)==(\S+)$")


class QwenSpeedError(ValueError):
    """A page or its sidecar is unusable; the message names the file, the line and the field."""

    def __init__(self, path, field: str, reason: str):
        self.path, self.field, self.reason = str(path), field, reason
        super().__init__(f"{path}: {field}: {reason}")


@dataclass(frozen=True)
class Page:
    """One stored page, its sidecar and where they are."""

    path: Path
    rel: str             # path as recorded in provenance.source_file
    name: str            # file name stem
    text: str
    sidecar: dict
    sha256: str


@dataclass(frozen=True)
class Row:
    """One row of a "(Transformer)" table, with the cells the table leaves blank carried down."""

    line: int            # 1-based line in the page
    section: str         # e.g. "7B"
    model: str
    input_len: int
    quantization: str
    gpus: int
    speed: str
    memory: str          # as printed
    note: str


# --------------------------------------------------------------------------- reading

def read_page(path, root) -> Page:
    """Read ``<root>/transformers/reports/<name>.rst`` and its ``<name>.source.yaml``.

    Raises
    ------
    QwenSpeedError
        Unreadable page, no sidecar, an unknown sidecar key or a required key missing.
    """
    path, root = Path(path), Path(root)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QwenSpeedError(path, "file", f"cannot read: {exc}") from None
    side_path = path.with_name(path.stem + SIDECAR_SUFFIX)
    try:
        sidecar = yaml.safe_load(side_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QwenSpeedError(side_path, "file", f"no sidecar beside the page ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise QwenSpeedError(side_path, "yaml", f"invalid YAML: {exc}") from None
    if not isinstance(sidecar, dict):
        raise QwenSpeedError(side_path, "yaml", "a sidecar is a mapping of key: value")
    for key, value in sidecar.items():
        if key not in SIDECAR_KEYS:
            raise QwenSpeedError(side_path, str(key), f"unknown sidecar key; expected {', '.join(SIDECAR_KEYS)}")
        if key == "flags":
            if not isinstance(value, list) or not all(isinstance(f, str) and re.fullmatch(r"[a-z0-9_]+", f)
                                                      for f in value):
                raise QwenSpeedError(side_path, "flags", "a list of lower_snake_case flags")
        elif value is not None and not isinstance(value, str):
            raise QwenSpeedError(side_path, str(key), f"expected text, got {type(value).__name__}")
    for key in REQUIRED_KEYS:
        if not sidecar.get(key):
            raise QwenSpeedError(side_path, key, "missing field")
    if find_gpu(sidecar["gpu"]) is None:
        raise QwenSpeedError(side_path, "gpu", f"{sidecar['gpu']!r} is not in the GPU table")
    try:
        rel = "profiles/public/" + path.relative_to(root).as_posix()
    except ValueError:
        rel = path.name
    return Page(path, rel, path.stem, text, sidecar, hashlib.sha256(raw).hexdigest())


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].split("|")]


def parse_rows(text: str, path="<page>") -> list[Row]:
    """The rows of every "(Transformer)" grid table of the page, blank cells carried down.

    Raises
    ------
    QwenSpeedError
        A table without the expected header, or a row whose cells do not read.
    """
    rows: list[Row] = []
    section = header = None
    model = input_len = None
    for no, line in enumerate(text.splitlines(), start=1):
        m = _SECTION.match(line)
        if m:
            section = m.group(1) if m.group(2) == "Transformer" else None
            header = model = input_len = None
            continue
        if section is None or not line.startswith("|"):
            continue
        cells = _cells(line)
        if header is None:
            if "Model" not in cells or "GPU Memory(GB)" not in cells:
                raise QwenSpeedError(path, f"line {no}", f"table of section {section} without a "
                                                         f"'Model' / 'GPU Memory(GB)' header: {cells!r}")
            header = cells
            continue
        if len(cells) != len(header):
            raise QwenSpeedError(path, f"line {no}", f"{len(cells)} cells, header has {len(header)}")
        cell = dict(zip(header, cells))
        model = cell["Model"] or model
        if cell["Input Length"]:
            if not cell["Input Length"].isdigit():
                raise QwenSpeedError(path, f"line {no}", f"Input Length {cell['Input Length']!r}")
            input_len = int(cell["Input Length"])
        if model is None or input_len is None:
            raise QwenSpeedError(path, f"line {no}", "row before the first Model / Input Length")
        if cell["Quantization"] not in QUANTIZATIONS:
            raise QwenSpeedError(path, f"line {no}", f"unknown Quantization {cell['Quantization']!r}")
        gpus = cell["GPU Num"]
        rows.append(Row(no, section, model, input_len, cell["Quantization"],
                        int(gpus) if gpus.isdigit() else 0, cell["Speed(tokens/s)"], cell["GPU Memory(GB)"],
                        cell.get("Note", "")))
    return rows


# --------------------------------------------------------------------------- converting

def _slug(text, limit=40):
    s = re.sub(r"[^A-Za-z0-9]+", "-", text or "unnamed").strip("-").lower()
    return s[:limit].rstrip("-") or "unnamed"


def convert_page(page: Page) -> tuple[list[dict], list[str]]:
    """Profiles of one page (one per table row with a memory figure) and the rows left out, with why."""
    side = page.sidecar
    gpu = find_gpu(side["gpu"])
    rows = parse_rows(page.text, page.path)
    if not rows:
        raise QwenSpeedError(page.path, "tables", "no '(Transformer)' table rows found")
    out, skipped = [], []
    for row in rows:
        where = f"{page.rel}:{row.line}"
        if not _NUMBER.match(row.memory) or row.gpus < 1:
            skipped.append(f"skipped row {where}: {row.model} {row.quantization} input {row.input_len}: no memory figure "
                           f"(GPU Memory {row.memory!r}, GPU Num {row.gpus or '?'})")
            continue
        suffix, quant, lib_key = QUANTIZATIONS[row.quantization]
        model_id = f"Qwen/{row.model}{suffix}"
        versions = side["framework_version"]
        lib_note = _LIB_NOTE.match(row.note)
        if lib_key and lib_note:
            versions += f"; {lib_note.group(1)} {lib_note.group(2)} (the row's Note)"
        elif lib_key and side.get(lib_key):
            versions += f"; {side[lib_key]}"
        elif row.note:
            skipped.append(f"skipped row {where}: unread Note {row.note!r}")
            continue
        n = row.gpus
        flags = sorted(set(side.get("flags") or ()))
        printed = f"| {row.model} | {row.input_len} | {row.quantization} | {n} | {row.speed} | {row.memory} |"
        notes = [
            f"Qwen speed benchmark ({page.name}, table '{row.section} (Transformer)', line {row.line}): one process "
            f"loads the model (torch_dtype 'auto', device_map 'auto' over {n} GPU{'s' if n > 1 else ''}, "
            f"flash_attention_2) and runs one generate() of batch 1 with a prompt of exactly {row.input_len} tokens "
            f"and exactly {NEW_TOKENS} new tokens (max_new_tokens {NEW_TOKENS}, min_length = input + {NEW_TOKENS}).",
            "peak_allocated_gib = 'GPU Memory(GB)': the sum over the visible GPUs of torch.cuda.max_memory_allocated "
            "(never reset: the peak since the process started, loading included) / 1024**3, printed with 2 decimals "
            "(speed_benchmark_transformers.py).",
        ]
        if n > 1:
            notes.append(f"device_map 'auto' over {n} GPUs: accelerate splits the layers (sequential, one GPU busy at "
                         f"a time), recorded as parallel.pp {n}; the figure is the sum over the {n} GPUs.")
        if quant:
            notes.append(f"Quantized checkpoint {model_id} ({row.quantization}); group size not stated by the page; "
                         "dtype: the checkpoint's own torch_dtype (torch_dtype 'auto'), not stated.")
        if side.get("notes"):
            notes.append(str(side["notes"]).strip())
        precision = {"dtype": "bfloat16", "kv_cache_dtype": "bfloat16"} if not quant else {"quantization": quant}
        model = {"id": model_id, "name_as_given": f"{row.model} ({row.quantization})"}
        if quant:
            model["weight_format"] = quant
        key = f"{page.sha256}:{row.line}"
        profile = {
            "schema_version": 1,
            "profile_id": f"{FRAMEWORK}-{_slug(model_id)}-" + hashlib.sha256(key.encode()).hexdigest()[:10],
            "framework": FRAMEWORK,
            "framework_version": versions,
            "framework_variant": "transformers generate() via Qwen speed_benchmark_transformers.py",
            "model": model,
            "gpu": {"name": gpu.name, "count": n},
            "workload": {"batch_size": 1, "input_len": row.input_len, "output_len": NEW_TOKENS,
                         "context_len": row.input_len + NEW_TOKENS, "phase": "generate"},
            "precision": precision,
            "engine_settings": {"attention_impl": "flash_attention_2", "device_map": "auto", "torch_dtype": "auto"},
            "kv_cache_mode": "growing",
            "measured": {"peak_allocated_gib": float(row.memory)},
            "measured_scope": "sum_over_gpus" if n > 1 else "per_gpu",
            "measurement_notes": " ".join(notes),
            "series": f"qwen-speed-{page.name}_generate_{_slug(row.model)}-{row.quantization.lower()}",
            "use_in_fit": True,
            "flags": flags,
            "provenance": {k: v for k, v in {
                "kind": "public-log",
                "url": side["url"],
                "evidence": f"{page.rel} line {row.line} (blank cells carried down): {printed} "
                            f"(Model | Input Length | Quantization | GPU Num | Speed(tokens/s) | GPU Memory(GB))"
                            + (f"; Note {row.note!r}" if row.note else ""),
                "date": side.get("date"),
                "notes": f"measure read in {side['script']}" if side.get("script") else None,
                "source_file": page.rel,
                "source_sha256": page.sha256,
                "source_lines": [row.line],
                "converter": CONVERTER,
            }.items() if v is not None},
        }
        if n > 1:
            profile["parallel"] = {"pp": n}
        try:
            out.append(validate_profile(profile))
        except ProfileError as exc:
            raise QwenSpeedError(page.path, f"line {row.line}: {exc.field}", f"converted profile invalid: "
                                                                            f"{exc.reason}") from None
    return out, skipped


def convert_pages(root) -> tuple[list[dict], list[str]]:
    """Convert every ``<root>/transformers/reports/qwen*-speed-benchmark.rst``.

    Returns
    -------
    (profiles, problems)
        Profiles in file order; ``problems`` lists the pages and rows left out with the reason.
    """
    root = Path(root)
    profiles, problems = [], []
    for path in sorted((root / FRAMEWORK / REPORTS_DIR).glob(PAGE_GLOB)):
        try:
            got, skipped = convert_page(read_page(path, root))
        except QwenSpeedError as exc:
            problems.append(str(exc))
            continue
        profiles.extend(got)
        problems.extend(skipped)
    seen = {}
    for prof in profiles:
        if prof["profile_id"] in seen:
            problems.append(f"duplicate profile id {prof['profile_id']}")
        seen[prof["profile_id"]] = True
    return profiles, problems


def is_ours(path) -> bool:
    """True when ``path`` is a profile this converter wrote."""
    return (profile_converter(path) or "").startswith("fitting.ingest.qwen_speed_benchmark")


def write_pages(profiles: list[dict], root) -> list[Path]:
    """Write the profiles to ``<root>/transformers/`` (atomic per file); remove this converter's stale files."""
    return write_converter_output(profiles, root, "fitting.ingest.qwen_speed_benchmark", (FRAMEWORK,))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fitting.ingest.qwen_speed_benchmark",
        description="Convert the Qwen speed-benchmark pages under ROOT/transformers/reports/qwen*-speed-benchmark.rst "
                    "(each with its <name>.source.yaml) into profiles under ROOT/transformers/ (one per table row).")
    parser.add_argument("--root", default="profiles/public", help="profile root (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="convert and list, write nothing")
    args = parser.parse_args(argv)
    profiles, problems = convert_pages(args.root)
    for problem in problems:
        print(f"left out: {problem}", file=sys.stderr)
    if not args.dry_run:
        write_pages(profiles, args.root)
    print(f"{'profile':<66}{'input':>8}{'GPUs':>6}{'GiB':>9}")
    for p in profiles:
        print(f"{p['profile_id']:<66}{p['workload']['input_len']:>8}{p['gpu']['count']:>6}"
              f"{p['measured']['peak_allocated_gib']:>9.2f}")
    print(f"{len(profiles)} profile(s) from {len({p['provenance']['source_file'] for p in profiles})} page(s)"
          + (" (dry run: nothing written)" if args.dry_run else ""))
    return 1 if any(not p.startswith("skipped row ") for p in problems) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
