"""Turn inference-framework start-up logs into schema-v1 profiles.

One parser per framework (:mod:`.vllm`, :mod:`.llamacpp`, :mod:`.sglang`, :mod:`.trtllm`,
:mod:`.tgi`) reads the memory lines each framework prints at start-up. A log can hold
several engine starts (one profile each); tensor-parallel ranks printing the same numbers
are one run. Units are recorded as the framework means them (vLLM's and SGLang's "GB" are
bytes / 2**30, so GiB; llama.cpp prints MiB); what a log does not say comes from
``overrides`` (the command line) or stays missing.

Examples
--------
>>> profiles = parse_log("INFO 01-16 09:40:00 worker.py:238] model weights take 19.86GiB; "
...                      "non_torch_memory takes 0.16GiB; PyTorch activation peak memory takes "
...                      "36.63GiB; the rest of the memory reserved for KV Cache is 14.65GiB.")
>>> profiles[0]["measured"]["weights_gib"], profiles[0]["framework"]
(19.86, 'vllm')
"""

from __future__ import annotations

import hashlib

from fitting.data.profiles import validate_profile
from fitting.version import __version__

from . import llamacpp, sglang, tgi, trtllm, vllm
from ._common import build_profile, iter_lines

__all__ = ["FRAMEWORKS", "NoMeasurementsError", "detect_framework", "parse_log"]

_PARSERS = {m.FRAMEWORK: m for m in (vllm, llamacpp, sglang, trtllm, tgi)}

#: Framework ids this package can ingest (``auto`` picks one of them).
FRAMEWORKS = tuple(_PARSERS)

_DETECT_CHARS = 8 << 20  # detection looks at the first 8 MiB of text


def _converter():
    return f"fitting.ingest {__version__}"


class NoMeasurementsError(ValueError):
    """The log has no memory line of a known framework.

    The message reads ``no measurements found in <source>`` (plus the reason).
    """

    def __init__(self, source, reason=""):
        self.source = source
        self.reason = reason
        super().__init__(f"no measurements found in {source}" + (f" ({reason})" if reason else ""))


def detect_framework(text):
    """Guess which framework printed ``text`` from literal markers.

    Parameters
    ----------
    text : str or bytes
        Log text (markers are counted in the first 8 MiB, looked for in the rest).

    Returns
    -------
    str or None
        One of :data:`FRAMEWORKS`, or None when no framework's markers occur.
    """
    ranked = _ranked_frameworks(text)
    return ranked[0] if ranked else None


def _ranked_frameworks(text):
    """Frameworks whose markers occur in ``text``, best score first.

    Markers are counted in the first 8 MiB; a marker that only occurs later (an engine
    start deep in a long serving log) still counts once.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    head = text[:_DETECT_CHARS]
    scores = {}
    for name, module in _PARSERS.items():
        score = 0
        for marker, weight in module.MARKERS.items():
            count = min(head.count(marker), 20)
            if count == 0 and len(text) > _DETECT_CHARS and marker in text:
                count = 1
            score += weight * count
        if score:
            scores[name] = score
    return sorted(scores, key=lambda name: -scores[name])


def _decode(raw):
    """UTF-16 with a byte-order mark (Windows redirects), else UTF-8; bad bytes replaced."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace")


def parse_log(text, framework="auto", *, source_name=None, overrides=None):
    """Parse one log into profiles, one per engine start.

    Parameters
    ----------
    text : str or bytes
        The log. Bytes are decoded as UTF-8 (UTF-16 when they start with its byte-order
        mark), undecodable bytes replaced; the profile
        ids and ``provenance.source_sha256`` use the SHA-256 of these bytes (of the
        UTF-8 encoding when a str is given).
    framework : {"auto", "vllm", "llamacpp", "sglang", "trtllm", "tgi"}
        Which parser to use; ``auto`` tries the frameworks whose markers occur in the
        text, best score first, and keeps the first one that finds memory lines.
    source_name : str, optional
        File name recorded in provenance and used in error messages.
    overrides : dict, optional
        What the log does not state: ``model`` (model id, sets ``model.id``), ``gpu``
        (GPU name), ``gpu_memory_gib`` (memory of one GPU, GiB), ``version`` (the framework
        version, e.g. from a docker image tag; vLLM also takes that release's defaults). Log values win over
        ``gpu``/``gpu_memory_gib``/``version``; a conflict is noted.

    Returns
    -------
    list of dict
        Schema-v1 profiles (validated), in the order of the engine starts.

    Raises
    ------
    NoMeasurementsError
        Unknown framework, or no memory line in the log.
    ValueError
        ``framework`` is not one of the choices.
    """
    source = source_name or "<text>"
    raw = text if isinstance(text, (bytes, bytearray)) else str(text).encode("utf-8", errors="replace")
    digest = hashlib.sha256(raw).hexdigest()
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text))
    if framework == "auto":
        candidates = _ranked_frameworks(text)
        if not candidates:
            raise NoMeasurementsError(source, "no known framework's log lines")
    elif framework in _PARSERS:
        candidates = [framework]
    else:
        raise ValueError(f"unknown framework {framework!r}; expected 'auto' or one of {', '.join(FRAMEWORKS)}")
    runs = []
    for framework in candidates:  # auto: the best-scoring framework that has memory lines
        if framework == "vllm" and (overrides or {}).get("version"):
            runs = _PARSERS[framework].parse(iter_lines(text), version=overrides["version"])
        else:
            runs = _PARSERS[framework].parse(iter_lines(text))
        if runs:
            break
    if not runs:
        raise NoMeasurementsError(source, f"no {' or '.join(candidates)} memory lines")
    converter = _converter()
    profiles = []
    for index, (run, parts) in enumerate(runs):
        profile = build_profile(framework, run, parts, index=index, source_name=source_name,
                                sha256=digest, overrides=overrides, converter=converter)
        validate_profile(profile)
        profiles.append(profile)
    return profiles
