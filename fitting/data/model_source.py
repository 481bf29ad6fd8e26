"""Any model a user names: the registry, a local checkpoint folder, or the Hugging Face Hub.

:func:`resolve_any` answers ``--model ID`` in this order:

1. **the curated registry** (:mod:`fitting.data.registry`): offline, verified facts;
2. **a local path**: a folder with ``config.json`` (or the file itself), read with its
   ``quantization_config`` (or ``quantize_config.json`` / ``hf_quant_config.json``) and, where
   present, ``model.safetensors.index.json`` and the safetensors *headers* (8-byte length +
   JSON; the weights are never read);
3. **the Hugging Face Hub** through ``huggingface_hub``: ``hf_hub_download`` of
   ``config.json`` (and of the quantization side files where the repo has them), plus
   ``get_safetensors_metadata`` for the exact dtype and shape of every tensor without
   downloading weights. Gated repos use the token ``huggingface_hub`` finds (``HF_TOKEN``,
   ``hf auth login``). Files go to ``huggingface_hub``'s cache, and the safetensors summary
   to :func:`metadata_cache_dir`, so a second call works offline. ``offline=True`` (or
   ``HF_HUB_OFFLINE=1``) forbids the network: only the caches answer.

The answer is a :class:`ResolvedModel`: the :class:`~fitting.data.registry.ModelEntry` the
estimator takes (with ``native_quantization`` read from the checkpoint's own config), which
source answered, the quantization as understood (:class:`~fitting.physics.quantization.QuantizationInfo`),
the safetensors summary (:class:`SafetensorsSummary`) and the check of the physics weights
against it (:class:`WeightCheck`), the bytes of parts the physics does not model (vision /
audio towers, MTP layers) where the metadata gives them, and warnings (unrecognised config
keys with what was assumed, towers not modelled). :meth:`ResolvedModel.describe` gives the
lines a CLI prints.

Multimodal checkpoints: the language model's sub-config (``text_config``, ``llm_config``,
``language_config``, Qwen-Omni ``thinker_config``) is the architecture; the towers are
counted from the safetensors headers when present, otherwise reported as "not modelled".
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from fitting.atomic_io import atomic_write_text
from fitting.data.registry import (
    IncompleteModelError,
    ModelEntry,
    Registry,
    UnknownModelError,
    load_registry,
)
from fitting.physics.architecture import TEXT_CONFIG_KEYS, Architecture, ArchitectureError, unrecognised_config_keys
from fitting.physics.memory import weight_bytes_per_gpu
from fitting.physics.towers import tower_bytes_per_gpu
from fitting.physics.quantization import (
    SAFETENSORS_DTYPE_BYTES,
    QuantizationInfo,
    UnsupportedQuantizationError,
    checkpoint_weight_bytes,
    dtype_bytes,
    normalize_dtype,
    quantization_from_config,
)
from fitting.units import BYTES_PER_GIB

__all__ = [
    "ResolvedModel", "SafetensorsSummary", "WeightCheck", "ModelSourceError", "ModelNotFoundError",
    "GatedModelError", "resolve_any", "load_local", "load_hub", "entry_from_config", "check_weights",
    "summary_from_headers", "summary_from_index", "read_safetensors_header", "read_local_safetensors",
    "metadata_cache_dir", "is_offline", "WEIGHT_TOLERANCE", "SOURCE_REGISTRY", "SOURCE_LOCAL", "SOURCE_HUB",
    "SOURCE_HUB_CACHE",
]

SOURCE_REGISTRY = "registry"
SOURCE_LOCAL = "local folder"
SOURCE_HUB = "Hugging Face Hub"
SOURCE_HUB_CACHE = "Hugging Face cache (offline)"

#: relative tolerance of the physics weights against the safetensors metadata.
WEIGHT_TOLERANCE = 0.005

#: side files that state a checkpoint's quantization when config.json does not.
_QUANT_FILES = ("quantize_config.json", "hf_quant_config.json", "quant_config.json")
_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"

#: tensor-name markers of the parts beside the language model.
_PART_MARKERS = (
    ("vision", ("visual.", "vision_tower", "vision_model", "vision_encoder", "multi_modal_projector", "mm_projector",
                "mlp1.", "vision_embed", "image_newline", "vit.", "vision.", "patch_embed", "img_")),
    ("audio", ("audio_tower", "audio_encoder", "audio.", "audio_model", "whisper")),
    ("talker", ("talker.", "token2wav.")),
    ("mtp", ("mtp.", ".mtp_", "nextn")),
)
_LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)\.")


class ModelSourceError(LookupError):
    """A model that no source could answer for (the message says what to do)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class GatedModelError(ModelSourceError):
    """A gated Hub repo and no token with access (accept the conditions, then log in)."""


class ModelNotFoundError(UnknownModelError):
    """No registry id, no local path, and the Hub (or its cache, offline) has no such repo."""

    def __init__(self, model_id: str, suggestions: list[str], reason: str):
        super().__init__(model_id, suggestions)
        hint = (" Close registry ids: " + ", ".join(self.suggestions) + ".") if self.suggestions else ""
        self.reason = reason
        self.message = (
            f"unknown model {model_id!r}: not in the registry, not a local folder, and {reason}.{hint} "
            "To use it: pass a local folder or config.json (--model path/to/folder, --config path/to/config.json), "
            f"or fetch its config once online (hf download {model_id} config.json) and rerun."
        )
        self.args = (self.message,)  # KeyError's args[0] is what CLIs print


# ----------------------------------------------------------------------------- safetensors
@dataclass(frozen=True)
class SafetensorsSummary:
    """What a checkpoint's safetensors metadata says, without the weights.

    Attributes
    ----------
    total_bytes : int or None
        Bytes of every tensor: the sum over the headers, or the index's ``total_size``.
    stated_total_size : int or None
        ``metadata.total_size`` of ``model.safetensors.index.json`` as written there.
    tensors : Mapping or None
        ``name -> (dtype, shape)`` from the headers; None when only the index was read.
    tensor_names : tuple of str
        Every tensor name (headers or the index's ``weight_map``).
    source : str
        ``safetensors headers``, ``index total_size`` or both, and where they came from.
    n_files : int
        Shards.
    """

    total_bytes: int | None
    stated_total_size: int | None
    tensors: Mapping[str, tuple] | None
    tensor_names: tuple
    source: str
    n_files: int = 0

    @property
    def has_shapes(self) -> bool:
        return self.tensors is not None

    def dtype_bytes(self) -> dict[str, int]:
        """Bytes per safetensors dtype (headers only)."""
        out: dict[str, int] = {}
        for dtype, shape in (self.tensors or {}).values():
            out[dtype] = out.get(dtype, 0) + _tensor_bytes(dtype, shape)
        return out

    def parameter_count(self) -> int | None:
        """Elements over all tensors (headers only; packed quantized tensors count their containers)."""
        if self.tensors is None:
            return None
        return sum(_numel(shape) for _, shape in self.tensors.values())

    def parts(self, arch: Architecture | None = None) -> dict[str, list[str]]:
        """Tensor names by part: ``text``, ``vision``, ``audio``, ``talker``, ``mtp``.

        With ``arch``, decoder layers at or beyond ``arch.num_layers`` are ``mtp``.
        """
        return _split_parts(self.tensor_names, arch)

    def part_bytes(self, arch: Architecture | None = None) -> dict[str, int] | None:
        """Bytes by part (headers only; None from an index alone)."""
        if self.tensors is None:
            return None
        out: dict[str, int] = {}
        for part, names in self.parts(arch).items():
            out[part] = sum(_tensor_bytes(*self.tensors[n]) for n in names)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"total_bytes": self.total_bytes, "stated_total_size": self.stated_total_size,
                "tensors": {k: [v[0], list(v[1])] for k, v in self.tensors.items()} if self.tensors is not None
                else None, "tensor_names": None if self.tensors is not None else list(self.tensor_names),
                "source": self.source, "n_files": self.n_files}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SafetensorsSummary:
        tensors = obj.get("tensors")
        tensors = {k: (v[0], tuple(v[1])) for k, v in tensors.items()} if tensors is not None else None
        names = tuple(tensors) if tensors is not None else tuple(obj.get("tensor_names") or ())
        return cls(obj.get("total_bytes"), obj.get("stated_total_size"), tensors, names, str(obj.get("source")),
                   int(obj.get("n_files") or 0))


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _tensor_bytes(dtype: str, shape) -> int:
    try:
        per = SAFETENSORS_DTYPE_BYTES[str(dtype).upper()]
    except KeyError:
        raise ValueError(f"unknown safetensors dtype {dtype!r}") from None
    return int(round(_numel(shape) * per))


def _split_parts(names, arch: Architecture | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"text": []}
    for name in names:
        low = name.lower()
        part = "text"
        for kind, markers in _PART_MARKERS:
            if any(m in low for m in markers):
                part = kind
                break
        if part == "text" and arch is not None:
            m = _LAYER_INDEX.search(name)
            if m and int(m.group(1)) >= arch.num_layers:
                part = "mtp"
        out.setdefault(part, []).append(name)
    return out


def summary_from_headers(headers: Mapping[str, Mapping[str, Any]], *, index: Mapping[str, Any] | None = None,
                         where: str = "") -> SafetensorsSummary:
    """Summary from parsed safetensors headers ``{file: {tensor: {"dtype", "shape", ...}}}``.

    ``__metadata__`` entries are skipped; ``index`` (a parsed ``model.safetensors.index.json``)
    adds its stated ``total_size``.
    """
    tensors: dict[str, tuple] = {}
    for header in headers.values():
        for name, info in header.items():
            if name == "__metadata__":
                continue
            tensors[name] = (str(info["dtype"]), tuple(int(d) for d in info["shape"]))
    total = sum(_tensor_bytes(*v) for v in tensors.values())
    stated = _stated_total(index)
    src = "safetensors headers" + (f" ({where})" if where else "")
    return SafetensorsSummary(total, stated, tensors, tuple(tensors), src, len(headers))


def _stated_total(index: Mapping[str, Any] | None) -> int | None:
    if not index:
        return None
    meta = index.get("metadata") or {}
    value = meta.get("total_size")
    return int(value) if value is not None else None


def summary_from_index(index: Mapping[str, Any], *, where: str = "") -> SafetensorsSummary:
    """Summary from ``model.safetensors.index.json`` alone: names and ``total_size``, no shapes."""
    names = tuple((index.get("weight_map") or {}).keys())
    stated = _stated_total(index)
    files = set((index.get("weight_map") or {}).values())
    src = "index total_size" + (f" ({where})" if where else "")
    return SafetensorsSummary(stated, stated, None, names, src, len(files))


def read_safetensors_header(path: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON header of a local ``.safetensors`` file (reads the first 8 + N bytes only).

    Returns None for a Git LFS pointer (a checkout without the weights).
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
        if head.startswith(b"version "):  # "version https://git-lfs..." pointer file
            return None
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (size,) = struct.unpack("<Q", head)
        if size > 100_000_000:
            raise ValueError(f"{path}: safetensors header of {size} bytes: not a safetensors file")
        return json.loads(fh.read(size).decode("utf-8"))


def read_local_safetensors(folder: str | os.PathLike) -> SafetensorsSummary | None:
    """Safetensors summary of a local checkpoint folder: headers of the ``*.safetensors``
    files present (LFS pointers skipped) and/or ``model.safetensors.index.json``."""
    folder = Path(folder)
    index = None
    if (folder / _INDEX).is_file():
        index = json.loads((folder / _INDEX).read_text(encoding="utf-8"))
    files = sorted(folder.glob("*.safetensors"))
    if index:
        wanted = set((index.get("weight_map") or {}).values())
        files = [f for f in files if f.name in wanted]
    headers = {}
    for f in files:
        h = read_safetensors_header(f)
        if h is not None:
            headers[f.name] = h
    expected = len(set((index or {}).get("weight_map", {}).values())) if index else len(files)
    if headers and len(headers) == max(expected, 1):
        return summary_from_headers(headers, index=index, where=str(folder))
    if index:
        return summary_from_index(index, where=str(folder / _INDEX))
    return None


# ----------------------------------------------------------------------------- weight check
@dataclass(frozen=True)
class WeightCheck:
    """The physics weights of a checkpoint against its safetensors metadata.

    Attributes
    ----------
    physics_bytes : float
        :func:`~fitting.physics.quantization.checkpoint_weight_bytes` of the language model
        (checkpoint dtype, quantization from its config; MTP layers when the checkpoint has them).
    metadata_bytes : int
        The same scope from the metadata: the text-model tensors (headers), or the index's
        ``total_size`` (whole checkpoint; towers included when there are any).
    rel_error : float
        ``physics / metadata - 1``.
    basis : str
        Which metadata figure was compared.
    comparable : bool
        False when the metadata figure includes parts the physics does not model (an index
        ``total_size`` of a multimodal checkpoint): then ``rel_error`` is not a check.
    """

    physics_bytes: float
    metadata_bytes: int
    rel_error: float
    basis: str
    comparable: bool = True
    tolerance: float = WEIGHT_TOLERANCE

    @property
    def agrees(self) -> bool:
        return self.comparable and abs(self.rel_error) <= self.tolerance


def check_weights(arch: Architecture, summary: SafetensorsSummary | None, *, dtype: str | None = None,
                  quantization: str | None = None) -> WeightCheck | None:
    """Compare the physics count of ``arch`` with the checkpoint's safetensors metadata.

    Parameters
    ----------
    arch : Architecture
    summary : SafetensorsSummary or None
    dtype : str, optional
        Storage dtype of unquantized tensors; default the config's ``torch_dtype`` (bfloat16).
    quantization : str, optional
        Weight format name (from the checkpoint's ``quantization_config``).

    Returns
    -------
    WeightCheck or None
        None without metadata.
    """
    if summary is None or summary.total_bytes is None:
        return None
    dtype = normalize_dtype(dtype) or normalize_dtype(arch.torch_dtype) or "bfloat16"
    parts = summary.parts(arch)
    with_mtp = bool(parts.get("mtp"))
    physics = checkpoint_weight_bytes(arch, dtype=dtype, quantization=quantization, include_mtp=with_mtp)
    # a checkpoint may store lm_head.weight although the config ties it to the embedding
    # (Falcon-180B): the model loads one matrix, so the stored copy is not compared
    tied_copy = [n for n in parts["text"] if arch.tie_word_embeddings and n.split(".")[-2:] == ["lm_head", "weight"]]
    if summary.tensors is not None:
        names = [n for n in parts["text"] if n not in tied_copy] + (parts.get("mtp") or [])
        meta = sum(_tensor_bytes(*summary.tensors[n]) for n in names)
        basis = "safetensors headers, language-model tensors" + (" incl. MTP layers" if with_mtp else "")
        comparable = True
    else:
        meta = int(summary.total_bytes)
        towers = [p for p in parts if p not in ("text", "mtp") and parts[p]]
        comparable = not towers
        basis = "index total_size (whole checkpoint" + (f"; includes {', '.join(towers)} not modelled)" if towers
                                                         else ")")
        if tied_copy:
            meta -= int(arch.vocab_size * arch.hidden_size * dtype_bytes(dtype))
    if tied_copy:
        basis += "; the stored lm_head.weight is tied to the embedding (not loaded) and left out"
    return WeightCheck(physics, meta, physics / meta - 1.0 if meta else float("inf"), basis, comparable)


# ----------------------------------------------------------------------------- the answer
@dataclass(frozen=True)
class ResolvedModel:
    """A model resolved by :func:`resolve_any` (or :func:`load_local` / :func:`load_hub`).

    Attributes
    ----------
    entry : ModelEntry
        What the estimator takes (``Estimator.predict(entry, ...)``); ``native_quantization``
        is the checkpoint's own format.
    source : str
        :data:`SOURCE_REGISTRY`, :data:`SOURCE_LOCAL`, :data:`SOURCE_HUB` or :data:`SOURCE_HUB_CACHE`.
    location : str
        Registry file, local folder, or ``https://huggingface.co/<id>`` (+ revision).
    revision : str or None
        Commit of the Hub snapshot that answered.
    config : Mapping or None
        The raw config.json (None for registry entries).
    quantization : QuantizationInfo or None
    safetensors : SafetensorsSummary or None
    weight_check : WeightCheck or None
    unmodelled_bytes : Mapping
        Bytes of checkpoint parts the physics does not model (``vision``, ``audio``,
        ``talker``), from the safetensors headers; empty when there are none or unknown.
    towers : tuple of str
        Multimodal towers the config names (``vision_config``...).
    warnings : tuple of str
    """

    entry: ModelEntry
    source: str
    location: str
    revision: str | None = None
    config: Mapping[str, Any] | None = field(default=None, repr=False)
    quantization: QuantizationInfo | None = None
    safetensors: SafetensorsSummary | None = field(default=None, repr=False)
    weight_check: WeightCheck | None = None
    unmodelled_bytes: Mapping[str, int] = field(default_factory=dict)
    towers: tuple = ()
    warnings: tuple = ()

    @property
    def architecture(self) -> Architecture | None:
        return self.entry.architecture

    @property
    def checkpoint_dtype(self) -> str:
        arch = self.entry.architecture
        return (normalize_dtype(arch.torch_dtype) if arch is not None and arch.torch_dtype else None) or "bfloat16"

    def weights_per_gpu(self, *, tp: int = 1, pp: int = 1, dtype: str | None = None,
                        quantization: str | None = None, embedding_on_gpu: bool = True,
                        towers_on_gpu: bool = True) -> dict[str, float]:
        """Weights on one GPU (GiB): the physics of the language model, plus the parts it does
        not model (towers, from the safetensors headers) counted whole on every GPU (an upper
        bound: engines may shard or place them on one rank).

        Parameters
        ----------
        tp, pp : int
        dtype : str, optional
            Default: the checkpoint's ``torch_dtype``.
        quantization : str, optional
            Default: the checkpoint's own format (``entry.native_quantization``).
        embedding_on_gpu : bool, default True
            False for llama.cpp, which keeps the token embeddings in host memory.
        towers_on_gpu : bool, default True
            False for llama.cpp, whose vision tower is a separate mmproj file.

        Returns
        -------
        dict
            ``language_model_gib``, ``unmodelled_gib``, ``total_gib`` (GiB per GPU) and
            ``unmodelled_parts`` (names, or ``not modelled`` towers without metadata). Without
            safetensors metadata a vision tower of a family :mod:`fitting.physics.towers` counts
            is added as ``vision tower (physics)``, its linear layers split over ``tp``.
        """
        arch = self.entry.architecture
        fmt = quantization if quantization is not None else self.entry.native_quantization
        lm = weight_bytes_per_gpu(arch, dtype=dtype or self.checkpoint_dtype, quantization=fmt, tp=tp, pp=pp,
                                  embedding_on_gpu=embedding_on_gpu)
        extra = float(sum(self.unmodelled_bytes.values()))
        parts = tuple(self.unmodelled_bytes) or tuple(f"{t} (not modelled)" for t in self.towers)
        if not self.unmodelled_bytes and self.towers and towers_on_gpu:
            dt = normalize_dtype(dtype) if dtype else self.checkpoint_dtype
            tower = tower_bytes_per_gpu(arch, dtype_bytes=dtype_bytes(dt), tp=tp)
            if tower:
                extra, parts = float(tower), ("vision tower (physics)",)
        if not towers_on_gpu and not self.unmodelled_bytes:
            parts = ()
        return {"language_model_gib": lm / BYTES_PER_GIB, "unmodelled_gib": extra / BYTES_PER_GIB,
                "total_gib": (lm + extra) / BYTES_PER_GIB, "unmodelled_parts": parts}

    def describe(self, *, tp: int | None = None, pp: int = 1, dtype: str | None = None,
                 quantization: str | None = None, embedding_on_gpu: bool = True,
                 towers_on_gpu: bool = True) -> list[str]:
        """Lines for a CLI: which source answered, the quantization, the metadata check, what is
        not modelled, and (with ``tp``) the weights per GPU in the ``dtype`` / ``quantization``
        the user asked for (default: the checkpoint's own)."""
        gb = 1e9
        where = self.location + (f" @ {self.revision[:12]}" if self.revision else "")
        lines = [f"model {self.entry.id}: answered by the {self.source} ({where})"]
        if self.quantization is not None:
            q = self.quantization
            lines.append(f"quantization: {q.description} -> weight format {q.format} (from the checkpoint's config)")
        elif self.entry.native_quantization:
            lines.append(f"quantization: {self.entry.native_quantization} (registry)")
        st = self.safetensors
        if st is not None:
            size = f"{st.total_bytes / gb:.3f} GB" if st.total_bytes is not None else "size unknown"
            lines.append(f"safetensors: {st.n_files} file(s), {len(st.tensor_names)} tensors, {size} ({st.source})")
        chk = self.weight_check
        if chk is not None:
            if chk.comparable:
                verdict = "agree" if chk.agrees else "DISAGREE"
                lines.append(f"weights: physics {chk.physics_bytes / gb:.3f} GB vs metadata {chk.metadata_bytes / gb:.3f} "
                             f"GB ({chk.basis}): {chk.rel_error * 100:+.3f}% ({verdict}, tolerance "
                             f"{chk.tolerance * 100:.1f}%)")
            else:
                lines.append(f"weights: physics {chk.physics_bytes / gb:.3f} GB (language model); metadata "
                             f"{chk.metadata_bytes / gb:.3f} GB ({chk.basis})")
        for part, nbytes in self.unmodelled_bytes.items():
            lines.append(f"{part}: {nbytes / gb:.3f} GB from the safetensors metadata (not in the physics weights; "
                         "add it on every GPU that holds it)")
        if tp is not None and self.entry.architecture is not None:
            w = self.weights_per_gpu(tp=tp, pp=pp, dtype=dtype, quantization=quantization,
                                     embedding_on_gpu=embedding_on_gpu, towers_on_gpu=towers_on_gpu)
            more = f" + {w['unmodelled_gib']:.2f} GiB {', '.join(w['unmodelled_parts'])}" if w["unmodelled_gib"] else (
                f" ({', '.join(w['unmodelled_parts'])})" if w["unmodelled_parts"] else "")
            fmt = quantization or self.entry.native_quantization or dtype or self.checkpoint_dtype
            where = "" if embedding_on_gpu else " (token embeddings in host memory)"
            lines.append(f"weights per GPU (tp={tp}, pp={pp}, {fmt}): {w['language_model_gib']:.2f} GiB language "
                         f"model{where}{more}")
        lines.extend(self.warnings)
        return lines


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` if given, else ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` from the environment."""
    if offline is not None:
        return bool(offline)
    return any(str(os.environ.get(k, "")).strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def metadata_cache_dir() -> Path:
    """Where safetensors summaries of Hub repos are kept for offline reuse.

    ``$LLM_SIZER_CACHE`` if set, else ``$XDG_CACHE_HOME/llm-sizer-fit`` (``~/.cache/llm-sizer-fit``),
    sub-folder ``safetensors``; one JSON per repo and commit.
    """
    root = os.environ.get("LLM_SIZER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "llm-sizer-fit")
    return Path(root) / "safetensors"


# ----------------------------------------------------------------------------- config -> entry
def entry_from_config(model_id: str, cfg: Mapping[str, Any], *, quant_config: Mapping[str, Any] | None = None,
                      sources: tuple = (), verification: str = "user config",
                      summary: SafetensorsSummary | None = None) -> tuple[ModelEntry, QuantizationInfo | None,
                                                                            WeightCheck | None, tuple]:
    """A :class:`ModelEntry` from a raw config.json, with the quantization and the checks.

    Parameters
    ----------
    model_id : str
    cfg : Mapping
        config.json content.
    quant_config : Mapping, optional
        A quantization side file (``quantize_config.json``, ``hf_quant_config.json``) when
        the config has no ``quantization_config``.
    sources : tuple of dict
        Provenance for the entry.
    verification : str
    summary : SafetensorsSummary, optional
        For the weight check and the tower bytes.

    Returns
    -------
    (ModelEntry, QuantizationInfo or None, WeightCheck or None, warnings)

    Raises
    ------
    ArchitectureError
        A required dimension is missing (the message names the field).
    UnsupportedQuantizationError
        A quantization the physics cannot size.
    """
    arch = Architecture.from_hf_config(cfg)
    mlx = cfg.get("quantization") if isinstance(cfg.get("quantization"), Mapping) else None  # mlx-lm's key
    qsrc = cfg.get("quantization_config") or _sub_quantization(cfg) or mlx or quant_config
    qinfo = quantization_from_config(qsrc) if qsrc else None
    warnings: list[str] = []
    unknown = unrecognised_config_keys(cfg)
    if unknown:
        warnings.append(f"config keys not read: {', '.join(unknown)} (assumed not to change the weights or the KV cache)")
    if arch.defaulted_fields:
        warnings.append(f"config lacks {', '.join(arch.defaulted_fields)}: the transformers default of "
                        f"{arch.text_model_type} was assumed")
    if qinfo is not None:
        warnings.extend(f"quantization: {a}" for a in qinfo.assumptions)
        if qinfo.unknown_fields:
            warnings.append(f"quantization_config fields not read: {', '.join(qinfo.unknown_fields)} "
                            "(assumed not to change the storage)")
    if arch.is_hybrid:
        warnings.append(f"hybrid stack: {len(arch.recurrent_layers)} of {arch.num_layers} layers are recurrent "
                        f"({', '.join(sorted({arch.layer_types[i] for i in arch.recurrent_layers}))}) and hold a "
                        "fixed-size state, not a KV cache")
    check = check_weights(arch, summary, quantization=qinfo.format if qinfo else None) if summary else None
    towers = tuple(arch.extra.get("multimodal_towers") or ())
    if towers and (summary is None or summary.tensors is None):
        warnings.append(f"{', '.join(towers)}: not modelled (no safetensors headers to count the tower from); the "
                        "weights are those of the language model only")
    if check is not None and check.comparable and not check.agrees:
        warnings.append(f"physics weights differ from the safetensors metadata by {check.rel_error * 100:+.2f}% "
                        f"({check.basis}): the metadata is exact, the physics count is not for this checkpoint")
    auto_map = cfg.get("auto_map")
    trust = bool(auto_map) and not _native_type(arch)
    entry = ModelEntry(
        id=model_id,
        architecture=arch,
        trust_remote_code=trust,
        trust_remote_code_reason=(f"config auto_map points at the repo's own code: {sorted(auto_map)}" if auto_map
                                  else f"model_type {arch.model_type}"),
        sources=tuple(sources),
        notes=tuple(warnings),
        verification=verification,
        weight_format=qinfo.description if qinfo else None,
        native_quantization=qinfo.format if qinfo else None,
    )
    return entry, qinfo, check, tuple(warnings)


def _sub_quantization(cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``quantization_config`` stored in the language model's sub-config (InternVL's ``llm_config``)."""
    for key in TEXT_CONFIG_KEYS:
        sub = cfg.get(key)
        if isinstance(sub, Mapping) and sub.get("quantization_config"):
            return sub["quantization_config"]
    return None


def _native_type(arch: Architecture) -> bool:
    # model types that transformers implements although some repos keep an auto_map
    return arch.text_model_type in ("phi3", "qwen2", "llama", "mistral", "deepseek_v3")


def _unmodelled(summary: SafetensorsSummary | None, arch: Architecture) -> dict[str, int]:
    if summary is None or summary.tensors is None:
        return {}
    pb = summary.part_bytes(arch) or {}
    return {k: v for k, v in pb.items() if k not in ("text", "mtp") and v}


def _resolved(model_id: str, cfg: Mapping[str, Any], *, source: str, location: str, revision: str | None,
              quant_config, summary, sources, verification) -> ResolvedModel:
    try:
        entry, qinfo, check, warnings = entry_from_config(model_id, cfg, quant_config=quant_config, sources=sources,
                                                          verification=verification, summary=summary)
    except ArchitectureError as exc:
        raise ModelSourceError(f"{model_id} ({source}, {location}): config.json: {exc}") from exc
    except UnsupportedQuantizationError as exc:
        raise ModelSourceError(f"{model_id} ({source}, {location}): {exc}") from exc
    arch = entry.architecture
    unmodelled = _unmodelled(summary, arch)
    if unmodelled:
        entry = replace(entry, unmodelled_weight_bytes=int(sum(unmodelled.values())))
    return ResolvedModel(entry=entry, source=source, location=location, revision=revision, config=dict(cfg),
                         quantization=qinfo, safetensors=summary, weight_check=check,
                         unmodelled_bytes=unmodelled,
                         towers=tuple(arch.extra.get("multimodal_towers") or ()), warnings=warnings)


# ----------------------------------------------------------------------------- local folders
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"{path}: cannot read: {exc}") from exc


def load_local(path: str | os.PathLike, *, model_id: str | None = None) -> ResolvedModel:
    """Resolve a local checkpoint folder (or its ``config.json``).

    Reads ``config.json``, a quantization side file when the config has no
    ``quantization_config``, and the safetensors index / headers present in the folder.

    Parameters
    ----------
    path : path-like
        A folder holding ``config.json``, or the config file itself.
    model_id : str, optional
        Id to report (default: the config's ``_name_or_path`` if it names a repo, else the path).

    Raises
    ------
    ModelSourceError
        No config.json, unreadable JSON, a missing dimension, or a quantization not sized.
    """
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    cfg_path = p / "config.json" if p.is_dir() else p
    if not cfg_path.is_file():
        raise ModelSourceError(f"{p}: no config.json here; pass a checkpoint folder or a config.json file")
    cfg = _read_json(cfg_path)
    quant = None
    if not cfg.get("quantization_config"):
        for name in _QUANT_FILES:
            if (folder / name).is_file():
                quant = _read_json(folder / name)
                break
    summary = read_local_safetensors(folder) if p.is_dir() or cfg_path.name == "config.json" else None
    mid = model_id or str(p)
    return _resolved(mid, cfg, source=SOURCE_LOCAL, location=str(folder), revision=None, quant_config=quant,
                     summary=summary, sources=({"ref": str(cfg_path), "kind": "local config.json"},),
                     verification="user config")


# ----------------------------------------------------------------------------- the Hub
def _hub_errors():
    from huggingface_hub import errors  # lazy: huggingface_hub ~130 ms at import (measured); Hub path only

    def get(*names):
        return tuple(getattr(errors, n) for n in names if hasattr(errors, n))

    return {
        "gated": get("GatedRepoError"),
        "missing_repo": get("RepositoryNotFoundError", "RevisionNotFoundError"),
        "missing_file": get("EntryNotFoundError", "RemoteEntryNotFoundError", "LocalEntryNotFoundError"),
        "offline": get("OfflineModeIsEnabled", "LocalEntryNotFoundError"),
        "http": get("HfHubHTTPError"),
        "not_safetensors": get("NotASafetensorsRepoError", "SafetensorsParsingError"),
    }


def _snapshot_commit(path: str) -> str | None:
    parts = Path(path).parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def _metadata_cache_file(repo_id: str, commit: str) -> Path:
    return metadata_cache_dir() / repo_id.replace("/", "--") / f"{commit}.json"


_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def hub_unreachable_reason() -> str | None:
    """Why the Hub's host cannot be reached, or None when it may be.

    One name lookup of the endpoint's host (``HF_ENDPOINT``, default huggingface.co). With no
    network, ``huggingface_hub`` retries each request with back-off for about 23 s before it
    falls back to its cache; the lookup fails in milliseconds. Behind a proxy the lookup is
    the proxy's business, so it is skipped.
    """
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        return f"name lookup of {host} failed: {exc}"
    return None


def load_hub(repo_id: str, *, revision: str | None = None, token: str | bool | None = None,
             offline: bool | None = None, cache_dir: str | os.PathLike | None = None,
             metadata: bool = True) -> ResolvedModel:
    """Resolve a Hugging Face Hub repo id through ``huggingface_hub`` (no weights downloaded).

    Parameters
    ----------
    repo_id : str
        ``org/name``.
    revision : str, optional
        Branch, tag or commit (default ``main``).
    token : str or bool, optional
        Passed to ``huggingface_hub`` (default: the token it finds itself).
    offline : bool, optional
        Only the local caches answer (default: ``HF_HUB_OFFLINE``).
    cache_dir : path-like, optional
        ``huggingface_hub`` cache folder (default: its own, ``HF_HUB_CACHE``).
    metadata : bool, default True
        Also read the safetensors metadata (headers online; the cached summary or the cached
        index offline).

    Raises
    ------
    GatedModelError
        A gated repo without a token that has access.
    ModelNotFoundError
        No such repo (or, offline, not in the cache).
    ModelSourceError
        The config cannot be read or sized.
    """
    try:
        # lazy: huggingface_hub ~130 ms at import (measured), optional dependency; Hub path only
        from huggingface_hub import get_safetensors_metadata, hf_hub_download
    except ImportError as exc:
        raise ModelSourceError(f"{repo_id}: reading the Hugging Face Hub needs huggingface_hub "
                               "(pip install huggingface_hub), or pass a local folder / config.json") from exc
    errs = _hub_errors()
    off = is_offline(offline)
    unreachable = None
    if not off:
        unreachable = hub_unreachable_reason()
        off = unreachable is not None  # only the cache can answer: skip huggingface_hub's ~23 s of retries
    kw = {"revision": revision, "cache_dir": cache_dir, "local_files_only": off}
    if token is not None:
        kw["token"] = token
    url = f"https://huggingface.co/{repo_id}"
    try:
        cfg_file = hf_hub_download(repo_id, "config.json", **kw)
    except errs["gated"] as exc:
        raise GatedModelError(
            f"{repo_id} is a gated repo and no token with access was found: accept its conditions at {url} and log "
            f"in (hf auth login, or set HF_TOKEN); then rerun. ({type(exc).__name__})") from exc
    except errs["missing_repo"] as exc:
        raise ModelNotFoundError(repo_id, load_registry().suggest(repo_id),
                                 f"the Hub has no repo {repo_id!r} (a private repo needs a token: hf auth login)"
                                 ) from exc
    except errs["missing_file"] + errs["offline"] as exc:
        if unreachable:
            raise ModelNotFoundError(repo_id, load_registry().suggest(repo_id),
                                     f"the Hub could not be reached ({unreachable}) and it is not in the local "
                                     "Hugging Face cache") from exc
        if off:
            raise ModelNotFoundError(repo_id, load_registry().suggest(repo_id),
                                     "it is not in the local Hugging Face cache and the network is off "
                                     "(--offline / HF_HUB_OFFLINE=1)") from exc
        raise ModelSourceError(f"{repo_id}: the repo has no config.json ({url}); is it a GGUF or an adapter repo? "
                               "Pass the base model's config and --quantization") from exc
    except (OSError,) + errs["http"] as exc:  # no network at all, proxy errors, 5xx
        raise ModelNotFoundError(repo_id, load_registry().suggest(repo_id),
                                 f"the Hub could not be reached ({type(exc).__name__}: {str(exc)[:200]})") from exc
    commit = _snapshot_commit(cfg_file)
    cfg = _read_json(Path(cfg_file))
    quant = None
    if not cfg.get("quantization_config"):
        for name in _QUANT_FILES:
            try:
                quant = _read_json(Path(hf_hub_download(repo_id, name, **kw)))
                break
            except errs["missing_file"] + errs["offline"] + errs["missing_repo"]:
                continue
            except (OSError,) + errs["http"]:
                break
    summary = None
    meta_note = None
    if metadata:
        summary, meta_note = _hub_metadata(repo_id, commit, revision=revision, token=token, offline=off,
                                           kw=kw, errs=errs, get_metadata=get_safetensors_metadata,
                                           download=hf_hub_download)
    source = SOURCE_HUB_CACHE if off else SOURCE_HUB
    sources = ({"ref": f"{url}/blob/{commit or revision or 'main'}/config.json", "kind": "config.json via "
                "huggingface_hub", "retrieved": date.today().isoformat()},)
    resolved = _resolved(repo_id, cfg, source=source, location=url, revision=commit or revision, quant_config=quant,
                         summary=summary, sources=sources, verification="hub config")
    if meta_note:
        resolved = _with_warning(resolved, meta_note)
    return resolved


def _with_warning(resolved: ResolvedModel, note: str) -> ResolvedModel:
    return replace(resolved, warnings=resolved.warnings + (note,))


def _hub_metadata(repo_id, commit, *, revision, token, offline, kw, errs, get_metadata, download):
    """(summary or None, note or None): the cached summary, the Hub's headers, or the index.

    Online, ``get_safetensors_metadata`` reads every shard header (HTTP range requests, no
    weights); the summary is cached per commit under :func:`metadata_cache_dir`. When the
    headers cannot be read, or offline without a cached summary, the index file (from the
    Hub or ``huggingface_hub``'s cache) gives names and ``total_size``.
    """
    cached = _metadata_cache_file(repo_id, commit) if commit else None
    if cached is not None and cached.is_file():
        try:
            return SafetensorsSummary.from_json(json.loads(cached.read_text(encoding="utf-8"))), None
        except (OSError, ValueError, KeyError, TypeError):
            pass
    note = None
    if not offline:
        mkw = {"revision": commit or revision}
        if token is not None:
            mkw["token"] = token
        try:
            meta = get_metadata(repo_id, **mkw)
        except errs["gated"]:
            return None, "safetensors metadata: gated repo, no access; weights from the physics only"
        except errs["not_safetensors"] + errs["missing_file"] + errs["missing_repo"] + errs["http"] + (OSError,) as exc:
            note = f"safetensors headers not read ({type(exc).__name__})"
        else:
            headers = {fname: {name: {"dtype": t.dtype, "shape": list(t.shape)} for name, t in fm.tensors.items()}
                       for fname, fm in meta.files_metadata.items()}
            index = {"metadata": meta.metadata} if meta.metadata else None
            summary = summary_from_headers(headers, index=index, where=f"huggingface.co/{repo_id}")
            if cached is not None:
                try:
                    atomic_write_text(cached, json.dumps(summary.to_json()))
                except OSError:
                    pass  # a read-only home: the next offline call falls back to the cached index
            return summary, None
    try:
        index_file = download(repo_id, _INDEX, **kw)
    except errs["missing_file"] + errs["offline"] + errs["missing_repo"] + errs["http"] + (OSError,):
        where = "the local caches (offline)" if offline else "the repo"
        return None, ((note + "; " if note else "") + f"safetensors metadata: none in {where}; weights from the "
                      "physics only")
    index = _read_json(Path(index_file))
    summary = summary_from_index(index, where=f"{_INDEX} from {'the Hugging Face cache' if offline else 'the Hub'}")
    return summary, (note + "; the index's total_size is used" if note else None)


# ----------------------------------------------------------------------------- the chain
def _looks_like_path(model: str) -> bool:
    """A path rather than a Hub id: ./x, /x, ~/x, x.json, or more than one slash."""
    return model.startswith((".", "/", "~")) or model.endswith(".json") or model.strip("/").count("/") > 1


def resolve_any(model: str | os.PathLike, *, offline: bool | None = None, revision: str | None = None,
                token: str | bool | None = None, registry: Registry | None = None,
                cache_dir: str | os.PathLike | None = None, hub: bool = True,
                metadata: bool = True) -> ResolvedModel:
    """Resolve ``--model`` through the source chain: registry, local path, Hugging Face Hub.

    Parameters
    ----------
    model : str or path-like
        A registry id or alias, a local folder / config.json, or a Hub repo id.
    offline : bool, optional
        Forbid the network (default: ``HF_HUB_OFFLINE``); the Hub's local cache still answers.
    revision, token, cache_dir
        Passed to ``huggingface_hub`` (:func:`load_hub`).
    registry : Registry, optional
        Default :func:`~fitting.data.registry.load_registry`.
    hub : bool, default True
        False: registry and local paths only.
    metadata : bool, default True
        Read the safetensors metadata on the Hub path.

    Returns
    -------
    ResolvedModel
        ``.source`` says which source answered.

    Raises
    ------
    ModelNotFoundError
        (a :class:`~fitting.data.registry.UnknownModelError`) no source knows the id; the
        message says how to pass a config.
    GatedModelError, ModelSourceError
        See :func:`load_hub`, :func:`load_local`.

    Examples
    --------
    >>> resolve_any("meta-llama/Llama-3.1-8B").source
    'registry'
    """
    text = os.fspath(model)
    reg = registry if registry is not None else load_registry()
    incomplete = None
    if text in reg:
        try:
            entry = reg.resolve(text)
            towers = tuple((entry.architecture.extra or {}).get("multimodal_towers") or ()) \
                if entry.architecture is not None else ()
            return ResolvedModel(entry=entry, source=SOURCE_REGISTRY, location=str(reg.path or "registry"),
                                 towers=towers)
        except IncompleteModelError as exc:
            incomplete = exc  # listed without verified dimensions: try the other sources
    local = Path(os.path.expanduser(text))
    if local.exists():
        return load_local(local, model_id=text)
    if _looks_like_path(text):
        raise ModelSourceError(f"{text}: no such file or folder (a local path was given)")
    reason = None
    if not hub:
        reason = "the Hub was not asked"
    elif not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", text):
        reason = "it is not a Hub repo id (org/name)"
    unsourced = reg.unsourced_reason(text)
    if reason is None:
        try:
            return load_hub(text, revision=revision, token=token, offline=offline, cache_dir=cache_dir,
                            metadata=metadata)
        except ModelNotFoundError as exc:
            if incomplete is not None:
                raise incomplete from None
            if unsourced:
                raise ModelNotFoundError(text, exc.suggestions,
                                         f"{exc.reason} (the registry lists it as unsourced: {unsourced})") from exc
            raise
    if incomplete is not None:
        raise incomplete
    if unsourced:
        reason += f" (the registry lists it as unsourced: {unsourced})"
    raise ModelNotFoundError(text, reg.suggest(text), reason)
