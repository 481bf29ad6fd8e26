"""Harvested public start-up logs -> public profiles: ``python -m fitting.ingest.harvest``.

Real start-up logs found in public issue threads, pull requests and repository files are
kept verbatim (shortened to the lines that matter) under
``profiles/public/<framework>/logs/<name>.log``, the loader skips that folder. Each file
starts with a header of ``# key: value`` lines, written by whoever harvested it:

``url``
    the public page (issue/PR thread or file) the lines were copied from; or
``ref``
    a description of the source when no URL is known (e.g. a public GitHub file whose
    repository path was not recorded, with its index id);
``date``
    the date of the post, as shown;
``model``
    the Hugging Face id of the model the log ran, when the source names it
    unambiguously (the GGUF file name or ``general.name`` plus the thread); a reviewed
    judgement, as in ``MODEL_TABLE`` of :mod:`fitting.data.public_logs_rules`;
``weight_format``
    the quantized file's format when the log does not print it;
``gpu``
    the GPU model when the log does not print it and the source names it elsewhere (the
    thread, a README, the log's file name; ``notes`` says where);
``tp``
    the tensor-parallel size when the log's lines do not state it in a form the parser reads
    and the source states it (a JSON ``--vllm_config``, the command); the log wins where both do;
``max_num_seqs``
    likewise the engine's ``max_num_seqs`` stated by the source outside the log lines (e.g. the
    ``docker run`` line printed just before them);
``max_num_batched_tokens``
    likewise, the engine's token budget per step stated only in the source's command;
``version``
    the framework version when the lines do not print it and the source states it (a docker
    image tag such as ``vllm/vllm-openai:v0.31.0`` or ``text-generation-inference:2.2.0``); it
    selects that version's defaults and mechanics;
``flags``
    comma-separated profile flags the reviewer set (``fork_build``, ``non_nvidia_gpu``,
    ``unified_memory``, ``failed_run``, ``speculative_decoding``, ...);
``notes``
    free text (what was shortened, where the settings came from).

This module parses the log part with the framework's parser (:func:`fitting.ingest.parse_log`)
and writes one profile per engine start to ``profiles/public/<framework>/`` with
``provenance.kind = "public-log"``, the URL/ref, the printed evidence and
``provenance.converter = "fitting.ingest.harvest <version>"``. Files it wrote before and
no longer produces are removed; files of other converters are never touched (the
``fitting.public_logs`` converter, which writes the same folders, likewise keeps these).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from fitting.data.profiles import profile_converter, validate_profile, write_converter_output
from fitting.version import __version__

from . import NoMeasurementsError, parse_log

__all__ = ["CONVERTER", "EXCLUDING_FLAGS", "HarvestError", "LogSource", "convert_logs", "main", "read_log",
           "write_harvest"]

CONVERTER = f"fitting.ingest.harvest {__version__}"
FRAMEWORKS = ("llamacpp", "sglang", "trtllm", "tgi", "vllm")
HEADER_KEYS = ("url", "ref", "date", "model", "weight_format", "flags", "notes", "gpu", "gpu_memory_gib", "tp",
               "max_num_seqs", "max_num_batched_tokens", "version")

#: Flags that keep a profile out of default fits (docs/profiles.md), with the reason written.
EXCLUDING_FLAGS = {
    "model_unnamed": "model not named by the source",
    "model_id_unresolved": "model not identified by an exact Hugging Face id",
    "fork_build": "fork of the framework",
    "patched_build": "locally patched build",
    "unified_memory": "unified-memory host",
    "non_nvidia_gpu": "non-NVIDIA GPU",
    "speculative_decoding": "speculative decoding (extra weights and buffers)",
    "failed_run": "figure from a failed start",
    "out_of_memory": "figure from a failed start (out of memory)",
    "remote_devices": "part of the model on remote RPC devices",
    "duplicate_record": "same measurement as another record",
    "legacy_build": "2023 scratch-buffer-era llama.cpp",
    "older_quant_mix": "GGUF quantized by an older llama.cpp whose tensor-type mix the weight physics (current "
                       "llama_tensor_get_type rules) does not reproduce",
    "concurrent_gpu_use": "other processes used the GPU during the start (free-memory deltas such as SGLang's "
                          "'mem usage' are not the engine's own)",
}


class HarvestError(ValueError):
    """A harvested log file is unusable (no header source, no measurement)."""


@dataclass(frozen=True)
class LogSource:
    """One harvested log file: its header and the log lines after it."""

    path: Path
    rel: str            # path as recorded in provenance.source_file
    framework: str
    header: dict
    body: str
    first_body_line: int  # 1-based line number of the first log line in the file
    sha256: str


def read_log(path, root) -> LogSource:
    """Read ``<root>/<framework>/logs/<name>.log`` into a :class:`LogSource`.

    Raises
    ------
    HarvestError
        No ``url`` or ``ref`` in the header, an unknown header key, or an unknown framework folder.
    """
    path, root = Path(path), Path(root)
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    framework = path.parent.parent.name
    if framework not in FRAMEWORKS:
        raise HarvestError(f"{path}: not under <root>/<framework>/logs/")
    header, lines = {}, text.splitlines()
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        m = re.match(r"#\s?(\w+):\s?(.*)$", lines[i])
        if m:
            key = m.group(1)
            if key not in HEADER_KEYS:
                raise HarvestError(f"{path}: line {i + 1}: unknown header key {key!r}")
            header[key] = (header[key] + " " + m.group(2).strip()) if key in header else m.group(2).strip()
        i += 1
    if not header.get("url") and not header.get("ref"):
        raise HarvestError(f"{path}: header has neither url nor ref")
    try:
        rel = "profiles/public/" + path.relative_to(root).as_posix()
    except ValueError:
        rel = path.name
    body = "\n".join(lines[i:]) + "\n"
    return LogSource(path, rel, framework, header, body, i + 1, hashlib.sha256(raw).hexdigest())


def _slug(text, limit=40):
    s = re.sub(r"[^A-Za-z0-9]+", "-", text or "unnamed").strip("-").lower()
    return s[:limit].rstrip("-") or "unnamed"


def _profile(src: LogSource, profile: dict, index: int, total: int) -> dict:
    h = src.header
    model = dict(profile["model"])
    flags = set(profile.get("flags", ()))
    flags |= {f.strip() for f in (h.get("flags") or "").split(",") if f.strip()}
    if h.get("model"):
        flags -= {"model_id_unresolved", "model_unnamed"}
    printed = model.get("weight_format")
    guessed = isinstance(printed, str) and "guessed" in printed.lower()
    precision = dict(profile.get("precision") or {})
    if h.get("weight_format") and (not printed or guessed):
        # llama.cpp prints "all F32 (guessed)" when the GGUF lacks its file type: the reviewer's
        # header (from the tensor types or the file name) then says what the file holds
        model["weight_format"] = h["weight_format"]
        q = precision.get("quantization")
        if guessed and isinstance(q, str) and "guessed" in q.lower():
            precision["quantization"] = ("gguf:" if q.startswith("gguf:") else "") + h["weight_format"]
        elif not printed and not q and src.framework == "llamacpp":
            # the lines kept do not print the file type: the reviewed format is the checkpoint's
            # quantization too (else the physics would size a Q2_K file as 16-bit weights)
            precision["quantization"] = "gguf:" + h["weight_format"]
    if profile.get("framework_variant") == "ik_llama.cpp":
        flags.add("fork_build")
    label = model.get("id") or model.get("name_as_given")
    pid = f"{src.framework}-{_slug(label)}-{src.sha256[:10]}" + (f"-{index}" if total > 1 else "")
    out = dict(profile, profile_id=pid, model=model)
    if precision:
        out["precision"] = precision
    reasons = [EXCLUDING_FLAGS[f] for f in sorted(flags) if f in EXCLUDING_FLAGS]
    if model.get("id") is None and not reasons:
        reasons.append(EXCLUDING_FLAGS["model_id_unresolved"])
    if not profile.get("use_in_fit", True) and profile.get("exclude_reason"):
        reasons.insert(0, profile["exclude_reason"])
    out["flags"] = sorted(flags)
    out["use_in_fit"] = not reasons
    out.pop("exclude_reason", None)
    if reasons:
        out["exclude_reason"] = "; ".join(dict.fromkeys(reasons))
    notes = [n for n in (profile.get("measurement_notes"), h.get("notes")) if n]
    out["measurement_notes"] = "; ".join(notes) or None
    if out["measurement_notes"] is None:
        out.pop("measurement_notes")
    if h.get("gpu") and not (out.get("gpu") or {}).get("name"):
        out["gpu"] = dict(out.get("gpu") or {}, name=h["gpu"])
    for key in ("max_num_seqs", "max_num_batched_tokens"):
        if h.get(key) and not (out.get("workload") or {}).get(key):
            out["workload"] = dict(out.get("workload") or {}, **{key: int(h[key])})
    if h.get("tp") and not (out.get("parallel") or {}).get("tp"):
        out["parallel"] = dict(out.get("parallel") or {}, tp=int(h["tp"]))
    if h.get("gpu_memory_gib"):
        out.setdefault("gpu", {})
        out["gpu"] = dict(out["gpu"], memory_gib=float(h["gpu_memory_gib"]))
    prov = {
        "kind": "public-log",
        "url": h.get("url") or None,
        "ref": h.get("ref") or (f"engine start {index} of the log" if total > 1 else None),
        "evidence": profile["provenance"]["evidence"],
        "date": h.get("date") or None,
        "source_file": src.rel,
        "source_sha256": src.sha256,
        "converter": CONVERTER,
    }
    if total > 1 and h.get("ref"):
        prov["ref"] = f"{h['ref']} (engine start {index} of the log)"
    out["provenance"] = {k: v for k, v in prov.items() if v is not None}
    return validate_profile(out)


#: Per-framework file beside the logs naming the torch.compile cache state of starts whose
#: excerpt left the compile lines out (vLLM only): ``<log name>: {compile_cache, source, lines}``.
COMPILE_CACHE_FILE = "compile_cache.yaml"
_COMPILE_LINE = re.compile(r"Compiling a graph for|saved AOT compiled function|Directly load")


def read_compile_cache(logs_dir) -> dict:
    """The entries of ``<logs_dir>/compile_cache.yaml`` (empty where there is none).

    Raises
    ------
    HarvestError
        An entry without a state ``cold`` / ``warm``, a source or a quoted compile line.
    """
    path = Path(logs_dir) / COMPILE_CACHE_FILE
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, e in data.items():
        if not isinstance(e, dict) or e.get("compile_cache") not in ("cold", "warm") or not e.get("source") \
                or not any(_COMPILE_LINE.search(str(line)) for line in e.get("lines") or ()):
            raise HarvestError(f"{path}: {name}: needs compile_cache (cold or warm), source and the quoted line(s)")
    return data


def _with_compile_cache(profile: dict, entry: dict | None, path) -> dict:
    """The profile with ``engine_settings.compile_cache`` from the side file's entry."""
    if entry is None:
        return profile
    eng = dict(profile.get("engine_settings") or {})
    if eng.get("compile_cache") not in (None, entry["compile_cache"]):
        raise HarvestError(f"{path}: the log says compile_cache {eng['compile_cache']!r}, {COMPILE_CACHE_FILE} "
                           f"{entry['compile_cache']!r}")
    eng["compile_cache"] = entry["compile_cache"]
    quoted = " | ".join(str(line) for line in entry["lines"])
    note = f"compile_cache {entry['compile_cache']}: the full source file ({entry['source']}) prints \"{quoted}\""
    notes = [n for n in (profile.get("measurement_notes"), note) if n]
    return dict(profile, engine_settings=eng, measurement_notes="; ".join(notes))


def convert_logs(root) -> tuple[list[dict], list[str]]:
    """Parse every ``<root>/<framework>/logs/*.log``.

    Returns
    -------
    (profiles, problems)
        Profiles in file order; ``problems`` lists the files left out, with the reason (a
        bad header, no memory line).
    """
    root = Path(root)
    profiles, problems = [], []
    for framework in FRAMEWORKS:
        try:
            compile_cache = read_compile_cache(root / framework / "logs")
        except HarvestError as exc:
            problems.append(str(exc))
            compile_cache = {}
        for name in sorted(set(compile_cache) - {p.name for p in (root / framework / "logs").glob("*.log")}):
            problems.append(f"{root / framework / 'logs' / COMPILE_CACHE_FILE}: {name}: no such log")
        for path in sorted((root / framework / "logs").glob("*.log")):
            try:
                src = read_log(path, root)
                parsed = parse_log(src.body, framework, source_name=path.name,
                                   overrides={"model": src.header.get("model"),
                                              "version": src.header.get("version")})
            except (HarvestError, NoMeasurementsError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: {exc}")
                continue
            for i, p in enumerate(parsed):
                try:
                    p = _with_compile_cache(p, compile_cache.get(path.name), path)
                    profiles.append(_profile(src, p, i, len(parsed)))
                except ValueError as exc:
                    problems.append(f"{path}: engine start {i}: {exc}")
    seen = {}
    for p in profiles:
        if p["profile_id"] in seen:
            problems.append(f"duplicate profile id {p['profile_id']} ({seen[p['profile_id']]})")
        seen[p["profile_id"]] = p["provenance"]["source_file"]
    return profiles, problems


def _ours(path: Path) -> bool:
    return (profile_converter(path) or "").startswith("fitting.ingest.harvest")


def write_harvest(profiles: list[dict], root) -> list[Path]:
    """Write the profiles to ``<root>/<framework>/`` (atomic per file); remove this converter's stale files."""
    return write_converter_output(profiles, root, "fitting.ingest.harvest", FRAMEWORKS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fitting.ingest.harvest",
        description="Convert the harvested public start-up logs under ROOT/<framework>/logs/*.log into profiles "
                    "under ROOT/<framework>/ (provenance kind public-log).")
    parser.add_argument("--root", default="profiles/public", help="profile root (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be written")
    args = parser.parse_args(argv)
    profiles, problems = convert_logs(args.root)
    for problem in problems:
        print(f"left out: {problem}", file=sys.stderr)
    if not args.dry_run:
        write_harvest(profiles, args.root)
    counts = {}
    for p in profiles:
        c = counts.setdefault(p["framework"], [0, 0, set()])
        c[0] += 1
        c[1] += bool(p["use_in_fit"])
        arch = (p["model"].get("hparams_printed") or {}).get("arch") or p["model"].get("id")
        if p["use_in_fit"] and arch:
            c[2].add(arch)
    print(f"{'framework':<12}{'profiles':>9}{'in fit':>8}{'archs':>7}")
    for fw, (n, used, archs) in counts.items():
        print(f"{fw:<12}{n:>9}{used:>8}{len(archs):>7}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
