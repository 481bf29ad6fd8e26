"""Classify why a profiling scenario failed, from the log the framework printed.

A failed scenario is information, not a crash: an out-of-memory error marks the memory
frontier (and says how much was asked for), a missing ``trust_remote_code`` or an
unsupported architecture says the scenario cannot run as written. Every failure becomes
an :class:`ErrorInfo`, which :mod:`fitting.profile.records` writes as an error record.

The patterns below are the messages PyTorch, transformers and vLLM really print; the
tests quote them from the frameworks' issue trackers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fitting.units import UNIT_BYTES

#: Error kinds. ``final`` kinds are deterministic: ``--resume`` does not retry them.
KINDS = (
    "trust_remote_code_required",
    "out_of_memory",
    "unsupported_architecture",
    "unsupported_configuration",
    "timeout",
    "unknown",
)
FINAL_KINDS = frozenset(
    {"trust_remote_code_required", "out_of_memory", "unsupported_architecture", "unsupported_configuration"}
)

#: Characters of log kept in an error record.
LOG_TAIL_CHARS = 4000

_NUM = r"(\d+(?:\.\d+)?)"
_UNIT = r"(GiB|MiB|KiB|GB|MB|B|bytes)"
_UNIT_TO_BYTES = {"gib": UNIT_BYTES["gib"], "mib": UNIT_BYTES["mib"], "kib": 2**10, "gb": UNIT_BYTES["gb"],
                  "mb": UNIT_BYTES["mb"], "b": 1, "bytes": 1}


@dataclass(frozen=True)
class ErrorInfo:
    """Why a scenario failed.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    message : str
        The line of the log that decided the kind (or a short description).
    details : dict
        Numbers read from the message. For ``out_of_memory``: ``requested_bytes`` (what the
        failing allocation or the KV cache asked for), ``available_bytes`` /
        ``free_bytes`` / ``total_bytes`` where printed, or ``required_tokens`` and
        ``available_tokens`` for vLLM's KV-capacity check. For ``timeout``: ``timeout_s``.
    log_tail : str
        The last :data:`LOG_TAIL_CHARS` characters of the log.
    """

    kind: str
    message: str
    details: dict = field(default_factory=dict)
    log_tail: str = ""

    @property
    def final(self) -> bool:
        """True when rerunning the same scenario would fail the same way."""
        return self.kind in FINAL_KINDS

    def to_dict(self) -> dict:
        """Plain-JSON form (kind, final, message, details, log_tail)."""
        return {"kind": self.kind, "final": self.final, "message": self.message,
                "details": dict(self.details), "log_tail": self.log_tail}


def _to_bytes(value: str, unit: str) -> int:
    return int(round(float(value) * _UNIT_TO_BYTES[unit.lower()]))


def _torch_oom(m: re.Match, text: str) -> dict:
    # New format (torch >= 2.1): "... Tried to allocate 3.50 GiB. GPU 0 has a total capacity of 23.69 GiB
    # of which 3.09 GiB is free." (torch 2.1 printed "capacty").
    # Old format: "Tried to allocate 1.63 GiB (GPU 0; 44.56 GiB total capacity; 27.91 GiB already allocated;
    # 565.31 MiB free; 27.93 GiB reserved in total by PyTorch)".
    details = {"requested_bytes": _to_bytes(m.group(1), m.group(2))}
    rest = text[m.end(): m.end() + 400]
    new = re.search(r"total capac\w*ty of " + _NUM + r" ?" + _UNIT + r" of which " + _NUM + r" ?" + _UNIT, rest)
    if new:
        details["total_bytes"] = _to_bytes(new.group(1), new.group(2))
        details["free_bytes"] = _to_bytes(new.group(3), new.group(4))
    else:
        old_total = re.search(_NUM + r" ?" + _UNIT + r" total capacity", rest)
        old_free = re.search(_NUM + r" ?" + _UNIT + r" free", rest)
        if old_total:
            details["total_bytes"] = _to_bytes(old_total.group(1), old_total.group(2))
        if old_free:
            details["free_bytes"] = _to_bytes(old_free.group(1), old_free.group(2))
    gpu = re.search(r"GPU (\d+)", rest)
    if gpu:
        details["gpu_index"] = int(gpu.group(1))
    return details


def _vllm_kv_bytes(m: re.Match, text: str) -> dict:
    details = {"max_model_len": int(m.group(1)),
               "requested_bytes": _to_bytes(m.group(2), m.group(3)),
               "available_bytes": _to_bytes(m.group(4), m.group(5))}
    est = re.search(r"estimated maximum model length is (\d+)", text[m.end(): m.end() + 300])
    if est:
        details["estimated_max_model_len"] = int(est.group(1))
    return details


def _vllm_kv_tokens(m: re.Match, text: str) -> dict:
    return {"required_tokens": int(m.group(1)), "available_tokens": int(m.group(2))}


def _none(m: re.Match, text: str) -> dict:
    return {}


def _architecture(m: re.Match, text: str) -> dict:
    names = [n.strip().strip("'\"") for n in m.group(1).split(",")]
    return {"architecture": ",".join(n for n in names if n)}


def _long_len(m: re.Match, text: str) -> dict:
    return {"max_model_len": int(m.group(1)), "derived_max_model_len": m.group(2)}


def _reason(m: re.Match, text: str) -> dict:
    return {"reason": m.group(1).strip()}


#: Marker the runners print when a scenario cannot run on a backend (e.g. tp > 1 with transformers).
UNSUPPORTED_MARKER = "fitting.profile: unsupported configuration:"


# (kind, compiled pattern, details extractor). The match that starts LAST in the log wins:
# the root cause is printed after warnings and before generic wrappers that match nothing.
_PATTERNS = [
    ("out_of_memory", re.compile(r"out of memory\. Tried to allocate " + _NUM + r" ?" + _UNIT), _torch_oom),
    ("out_of_memory", re.compile(r"CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation"),
     _none),
    ("out_of_memory", re.compile(r"To serve at least one request with the models?'s max seq len \((\d+)\),?\s*\(?"
                                 + _NUM + r" ?" + _UNIT + r" KV cache is needed, which is larger than the available "
                                 r"KV cache memory \(" + _NUM + r" ?" + _UNIT + r"\)"), _vllm_kv_bytes),
    ("out_of_memory", re.compile(r"max seq len \((\d+)\) is larger than the maximum number of tokens that can be "
                                 r"stored in KV cache \((\d+)\)"), _vllm_kv_tokens),
    ("out_of_memory", re.compile(r"No available memory for the cache blocks"), _none),
    ("trust_remote_code_required", re.compile(
        r"requires you to execute (?:the )?(?:\w+ )?(?:file|code)[^\n]*?in that repo|"
        r"set the option `?trust_remote_code=True`? to remove this error|"
        r"pass the argument `?trust_remote_code=True`?"), _none),
    ("unsupported_architecture", re.compile(r"Model architectures \[([^\]]*)\] (?:are|is) not supported"),
     _architecture),
    ("unsupported_architecture", re.compile(r"has model type `([^`]+)` but Transformers does not recognize "
                                            r"this architecture"), _architecture),
    ("unsupported_configuration", re.compile(r"User-specified max_model_len \((\d+)\) is greater than the derived "
                                             r"max_model_len \(([^)]*)\)"), _long_len),
    ("unsupported_configuration", re.compile(re.escape(UNSUPPORTED_MARKER) + r"([^\n]*)"), _reason),
    ("unsupported_architecture", re.compile(r"Unrecognized (?:model identifier|configuration class)[:\s]+"
                                            r"<?(?:class ')?([\w.]+)"), _architecture),
]


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start: end if end >= 0 else len(text)].strip()[:1000]


def classify_error(log_text: str, *, timed_out: bool = False, timeout_s: float | None = None,
                   returncode: int | None = None, message: str | None = None) -> ErrorInfo:
    """Classify a failed run from its log.

    Parameters
    ----------
    log_text : str
        Everything the run printed (stdout and stderr).
    timed_out : bool
        The run was stopped at its time limit: the kind is ``timeout`` whatever the log says.
    timeout_s : float, optional
        The limit, seconds (recorded in ``details``).
    returncode : int, optional
        Exit status (recorded in ``details`` for ``unknown``).
    message : str, optional
        An exception message known directly (e.g. from the worker's result file); it is
        searched after the log.

    Returns
    -------
    ErrorInfo
        ``out_of_memory`` carries the size that failed in ``details`` where the message
        prints one; ``unknown`` carries the log tail.
    """
    text = log_text or ""
    if message:
        text = f"{text}\n{message}"
    tail = text[-LOG_TAIL_CHARS:]
    if timed_out:
        details = {} if timeout_s is None else {"timeout_s": float(timeout_s)}
        return ErrorInfo("timeout", f"stopped after the time limit of {timeout_s} s", details, tail)
    best = None
    for kind, pattern, extract in _PATTERNS:
        for m in pattern.finditer(text):
            if best is None or m.start() >= best[1].start():
                best = (kind, m, extract)
    if best is not None:
        kind, m, extract = best
        return ErrorInfo(kind, _line_at(text, m.start()), extract(m, text), tail)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = lines[-1][:1000] if lines else "no output"
    details = {} if returncode is None else {"returncode": int(returncode)}
    return ErrorInfo("unknown", last, details, tail)
