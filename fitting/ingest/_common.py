"""Shared machinery of the log parsers: exact numbers, line streaming, run assembly.

A parser reads a log line by line. Cheap literal pre-filters decide which lines are
looked at with the (linear, anchored-on-literal) regular expressions; the matches feed a
:class:`Collector`, which splits the log into engine starts (:class:`Run`) and folds the
identical lines that several tensor-parallel ranks print into one run. Each parser then
turns its runs into schema-v1 profile dicts with :func:`build_profile`.

Numbers are kept as :class:`decimal.Decimal` exactly as printed until the very end, so
sums over devices and unit relabelling are exact; ``nan``, ``inf``, negative numbers and
absurdly long digit strings never match or are rejected.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from fitting import units

#: A printed non-negative number: digits, optional thousands commas, optional fraction.
#: Never the tail of a longer token (``-1``, ``1e308``, ``x12`` do not match).
NUM = r"(?<![\w.,\-])(\d(?:[\d,]{0,40}\d)?(?:\.\d{1,40})?)"

#: Lines longer than this (binary blobs, minified dumps) are not searched.
MAX_LINE_CHARS = 1 << 16

_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[A-Za-z]")
_PLAIN = re.compile(r"\d{1,40}(?:\.\d{1,40})?")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3}){1,13}(?:\.\d{1,40})?")

#: Bytes per unit suffix (``fitting.units``, plus ``kib`` for TensorRT-LLM's small "KB" figures).
UNIT_BYTES = {**units.UNIT_BYTES, "kib": 2**10}


def parse_decimal(text):
    """Parse a printed number exactly.

    Parameters
    ----------
    text : str
        Digits with an optional fraction, optionally grouped with thousands commas
        (``"158,656"``). Anything else (``nan``, ``inf``, signs, exponents, bad
        grouping, non-ASCII digits, more than 40 characters) is rejected.

    Returns
    -------
    decimal.Decimal or None
        The exact value, or None when the text is not a valid non-negative number.
    """
    if not isinstance(text, str) or not 0 < len(text) <= 40 or not text.isascii():
        return None
    if _PLAIN.fullmatch(text) is None:
        if _GROUPED.fullmatch(text) is None:
            return None
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - guarded by the regexes above
        return None
    return value if value.is_finite() else None


def parse_int(text):
    """Parse a printed non-negative integer exactly (commas allowed); None if invalid."""
    value = parse_decimal(text)
    if value is None or value != value.to_integral_value():
        return None
    return int(value)


def to_float(value):
    """Convert an exact Decimal to the nearest float; None when not finite."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def convert(value, from_unit, to_unit):
    """Convert an exact Decimal between binary/decimal memory units, exactly.

    Parameters
    ----------
    value : decimal.Decimal
        Amount in ``from_unit``.
    from_unit, to_unit : str
        Keys of :data:`UNIT_BYTES` (``gib``, ``mib``, ``kib``, ``gb``, ``mb``, ``bytes``).
    """
    return value * UNIT_BYTES[from_unit] / UNIT_BYTES[to_unit]


def fmt(value):
    """Format a Decimal the way it was printed (no exponent, no float noise)."""
    text = format(value, "f")
    return text


def iter_lines(text):
    """Yield the lines of ``text`` one at a time, ANSI colours stripped.

    ``\\r`` (progress bars) also ends a line. Lines longer than :data:`MAX_LINE_CHARS`
    are skipped: no log line worth parsing is that long, and it keeps garbage input
    (binary data without newlines) cheap.
    """
    for line in io.StringIO(text, newline=None):
        if len(line) > MAX_LINE_CHARS:
            continue
        line = line.rstrip("\n")
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        yield line


# --------------------------------------------------------------------------- runs


@dataclass
class Item:
    """One value read from the log."""

    value: object
    unit: str | None
    rank: str
    line: str
    label: str | None = None  # the unit exactly as printed ("GB", "GiB", ...)


@dataclass
class Run:
    """What one engine start printed, before it becomes a profile."""

    items: dict = field(default_factory=dict)        # key -> Item (single values)
    sums: dict = field(default_factory=dict)         # key -> list[Item] (accumulated)
    settings: dict = field(default_factory=dict)     # key -> value
    evidence: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    measured: bool = False

    def add_evidence(self, text):
        text = text.strip()
        if len(text) > 600:
            text = text[:600] + " ..."
        if text and text not in self.evidence:
            self.evidence.append(text)

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def flag(self, name):
        if name not in self.flags:
            self.flags.append(name)

    def get(self, *keys):
        """First present item among ``keys`` (priority order), or None."""
        for key in keys:
            item = self.items.get(key)
            if item is not None:
                return item
        return None


class Collector:
    """Split a stream of matches into engine starts.

    Rules (the same for every framework):

    * a *start marker* (engine header, launch command, model loader banner) opens a new
      run when the current one already holds a measurement;
    * a measurement key printed again **by the same rank** opens a new run (the engine
      was started again);
    * the same key printed by **another rank** (tensor-parallel workers printing the
      same numbers) is folded: the first value is kept and a differing value is noted;
    * ``mode="sum"`` keys accumulate within a run (per-device buffers, several KV
      pools) from the first rank that printed them; ``mode="last"`` keys are
      overwritten (a framework that prints a provisional and a final value).
    """

    def __init__(self):
        self.runs = [Run()]

    @property
    def run(self):
        return self.runs[-1]

    def start(self):
        """A start marker was seen."""
        if self.run.measured:
            self.runs.append(Run())

    def add(self, key, value, unit, *, rank="", line="", mode="once", measurement=True, label=None):
        """Record ``value`` (in ``unit``) under ``key`` for the current run."""
        if value is None:
            return
        run = self.run
        item = Item(value, unit, rank, line, label)
        if mode == "sum":
            items = run.sums.setdefault(key, [])
            if items and items[0].rank != rank:
                return
            items.append(item)
        elif mode == "last":
            run.items[key] = item
        else:
            old = run.items.get(key)
            if old is not None:
                if old.rank == rank:
                    self.runs.append(Run())
                    run = self.run
                else:
                    if (old.value, old.unit) != (value, unit):
                        run.flag("ranks_differ")
                        run.note(
                            f"{key}: {rank or 'main process'} printed {_show(value)} {unit or ''}, "
                            f"kept {_show(old.value)} {old.unit or ''} from {old.rank or 'main process'}"
                        )
                    return
            run.items[key] = item
        if measurement:
            run.measured = True
        run.add_evidence(line)

    def setting(self, key, value, *, fragment=None, overwrite=False):
        """Record a launch setting (first value wins unless ``overwrite``)."""
        if value is None:
            return
        run = self.run
        if overwrite or run.settings.get(key) is None:
            run.settings[key] = value
            if fragment:
                run.add_evidence(fragment)

    def finish(self):
        """Runs that hold at least one measurement."""
        return [run for run in self.runs if run.measured]


def _show(value):
    return fmt(value) if isinstance(value, Decimal) else str(value)


# ----------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Rule:
    """A line rule: ``literal`` must occur in the line before ``pattern`` is tried."""

    literal: str
    pattern: re.Pattern
    handler: object


def scan(lines, rules, on_line=None):
    """Run ``rules`` over ``lines``; each rule's handler gets ``(match, line)``.

    Parameters
    ----------
    lines : iterable of str
    rules : list of Rule
    on_line : callable, optional
        Called with every line that passed the combined literal pre-filter, before the
        rules (used for rank prefixes).
    """
    prefilter = re.compile("|".join(sorted({re.escape(r.literal) for r in rules}, key=len, reverse=True)))
    for line in lines:
        if prefilter.search(line) is None:
            continue
        context = on_line(line) if on_line else None
        for r in rules:
            if r.literal in line:
                m = r.pattern.search(line)
                if m is not None:
                    r.handler(m, line, context)


def measure_rule(collector, literal, pattern, key, *, unit=None, group=1, unit_group=None,
                 units=None, mode="once", integer=False, measurement=True):
    """A :class:`Rule` that records one number of a matching line under ``key``.

    ``unit`` is the fixed unit suffix, or ``unit_group`` names the regex group holding
    the printed unit label, mapped to a suffix by ``units`` (the framework's own meaning
    of its labels, e.g. vLLM's ``GB`` is ``gib``). The handler receives the line's rank
    as context.
    """
    regex = re.compile(pattern)

    def handler(m, line, rank):
        raw = m.group(group)
        value = parse_int(raw) if integer else parse_decimal(raw)
        label = m.group(unit_group) if unit_group else None
        suffix = units.get(label) if unit_group else unit
        if value is None or (unit_group and suffix is None):
            return
        collector.add(key, value, suffix, rank=rank or "", line=line, mode=mode,
                      measurement=measurement, label=label)

    return Rule(literal, regex, handler)


def setting_rule(collector, literal, pattern, key, convert_fn, *, group=1, overwrite=False, marker=False):
    """A :class:`Rule` that records a launch setting (``convert_fn(text) -> value``)."""
    regex = re.compile(pattern)

    def handler(m, line, _rank):
        if marker:
            collector.start()
        collector.setting(key, convert_fn(m.group(group)), fragment=line, overwrite=overwrite)

    return Rule(literal, regex, handler)


# ------------------------------------------------------------------- key=value text

_QUOTED = r"'[^']{0,300}'|\"[^\"]{0,300}\""


def kv_pattern(keys, style):
    """Regex for ``key=value`` (``style='eq'``), ``'key': value`` (``'dict'``) or
    ``--key value`` (``'cli'``) settings, for the given keys."""
    names = "|".join(sorted(keys, key=len, reverse=True))
    if style == "eq":
        return re.compile(rf"(?<![\w.-])({names})=({_QUOTED}|[^,\s)}}]{{0,200}})")
    if style == "dict":
        return re.compile(rf"'({names})':\s?({_QUOTED}|[^,}}]{{0,200}})")
    if style == "cli":
        names = "|".join(sorted((k.replace("_", "-") for k in keys), key=len, reverse=True))
        return re.compile(rf"(?<!\S)--({names})(?:=|\s+)({_QUOTED}|[^\s'\"]{{1,300}})")
    raise ValueError(style)


def clean_value(raw):
    """Strip quotes; map ``None``/``null`` to None; keep everything else as text."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    if raw in ("None", "null", "none", ""):
        return None
    return raw


def as_bool(raw):
    """``True``/``true``/``1`` -> True, ``False``/``false``/``0`` -> False, else None."""
    if raw is None:
        return None
    low = raw.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    return None


def as_fraction(raw):
    """A printed fraction such as ``0.90`` as float, only when it lies in (0, 1]."""
    value = parse_decimal(raw) if raw is not None else None
    if value is None or not 0 < value <= 1:
        return None
    return to_float(value)


# --------------------------------------------------------------------- profiles


def sum_items(items, unit_for):
    """Exact sum of accumulated items, all converted to one unit.

    Parameters
    ----------
    items : list of Item
    unit_for : str
        Target unit; items printed in another unit are converted exactly.

    Returns
    -------
    (Decimal, str)
        The sum and a text listing the addends as printed, for the notes.
    """
    total = Decimal(0)
    parts = []
    for it in items:
        value = it.value if it.unit == unit_for else convert(it.value, it.unit, unit_for)
        total += value
        parts.append(fmt(value))
    return total, " + ".join(parts)


def measured_field(run_measured, name, value, unit):
    """Put an exact Decimal into the ``measured`` dict as ``<name>_<unit>`` float."""
    number = to_float(value)
    if number is not None and number >= 0:
        run_measured[f"{name}_{unit}"] = number


def looks_like_model_id(name):
    """True for ``org/name`` style ids; False for paths and bare file names."""
    if not name or len(name) > 200:
        return False
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) is not None


_POSITIVE = ("gpu", "parallel", "workload")  # sections whose numbers must be > 0 (counts, lengths, GiB)


def _positive(value):
    return isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0)


def build_profile(framework, run, parts, *, index, source_name, sha256, overrides, converter):
    """Assemble one schema-v1 profile dict.

    Parameters
    ----------
    framework : str
        Framework family (schema enum).
    run : Run
        The engine start (evidence, notes, flags).
    parts : dict
        Parser output: ``measured`` (dict of float), and optionally ``framework_version``,
        ``framework_variant``, ``engine``, ``model``, ``gpu``, ``parallel``, ``workload``,
        ``precision``, ``engine_settings``, ``kv_cache_mode``, ``measured_scope``,
        ``use_in_fit``, ``exclude_reason``.
    index : int
        Engine-start index in the log (0-based); part of the stable profile id.
    source_name : str or None
        File name of the log (provenance).
    sha256 : str
        Hex digest of the log bytes; its first 12 characters are part of the id.
    overrides : dict
        ``model``, ``gpu``, ``gpu_memory_gib`` and ``version`` from the command line or a
        harvested log's header: they fill what the log does not state; ``model`` sets
        ``model.id``.
    converter : str
        Tool name and version for provenance.
    """
    overrides = overrides or {}
    notes = list(run.notes)
    flags = list(run.flags)

    model = {k: v for k, v in (parts.get("model") or {}).items() if v is not None}
    name = model.get("name_as_given")
    if overrides.get("model"):
        model["id"] = overrides["model"]
        if name and name != overrides["model"]:
            notes.append(f"model id {overrides['model']!r} given on the command line; the log printed {name!r}")
    elif looks_like_model_id(name):
        model["id"] = name
    else:
        model["id"] = None
        flags.append("model_id_unresolved" if name else "model_unnamed")
    model.setdefault("id", None)

    gpu = {k: v for k, v in (parts.get("gpu") or {}).items() if v is not None}
    for key, flag in (("name", "gpu"), ("memory_gib", "gpu_memory_gib")):
        given = overrides.get(flag)
        if given is None:
            continue
        if gpu.get(key) is None:
            gpu[key] = given
            notes.append(f"gpu.{key} = {given} from the command line (not in the log)")
        elif gpu[key] != given:
            notes.append(f"gpu.{key}: log printed {gpu[key]}, command line said {given}; kept the log value")

    version = parts.get("framework_version")
    if version is None and overrides.get("version"):
        # a release the source states outside the lines (a docker image tag); the vLLM parser
        # takes it itself, as it also selects that release's defaults
        version = str(overrides["version"])
        notes.append(f"framework_version {version} stated by the source (not printed in the log)")

    profile = {
        "schema_version": 1,
        "profile_id": f"ingested-{framework}-{sha256[:12]}-{index}",
        "framework": framework,
        "framework_version": version,
        "framework_variant": parts.get("framework_variant"),
        "engine": parts.get("engine"),
        "model": model,
    }
    for section in ("gpu", "parallel", "workload", "precision", "engine_settings"):
        values = gpu if section == "gpu" else parts.get(section) or {}
        values = {k: v for k, v in values.items() if v is not None}
        for key in [k for k, v in values.items() if section in _POSITIVE and not _positive(v)]:
            notes.append(f"{section}.{key} = {values.pop(key)} printed, not a valid value: left out")
        if values:
            profile[section] = values
    profile["kv_cache_mode"] = parts.get("kv_cache_mode")
    profile["measured"] = parts["measured"]
    profile["measured_scope"] = parts.get("measured_scope", "per_gpu")
    profile["measurement_notes"] = "; ".join(parts.get("notes", []) + notes) or None
    profile["use_in_fit"] = parts.get("use_in_fit", True)
    if parts.get("exclude_reason"):
        profile["exclude_reason"] = parts["exclude_reason"]
    profile["flags"] = sorted(set(flags + parts.get("flags", [])))
    profile["provenance"] = {
        "kind": "ingested-log",
        "source_file": source_name,
        "source_sha256": sha256,
        "evidence": "\n".join(run.evidence) or "(no line)",
        "converter": converter,
        "ref": f"engine start {index} of the log",
    }
    return profile


__all__ = [
    "NUM",
    "Collector",
    "Item",
    "Run",
    "Rule",
    "build_profile",
    "clean_value",
    "convert",
    "fmt",
    "iter_lines",
    "kv_pattern",
    "measured_field",
    "parse_decimal",
    "parse_int",
    "scan",
    "sum_items",
    "to_float",
]

