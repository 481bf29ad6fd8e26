"""vLLM release dates, for profiles that give a date but not the vLLM version.

A public log often names the day it was posted but not the vLLM version that printed it.
The newest release published on or before that day is then the newest version the run can
have used: :func:`vllm_release_at` returns it, and the fit uses it as the run's version
(recorded as inferred). Its mechanisms (sampler implementation, defaults, accounting) are
those of that release; an older install would differ only where a mechanism changed in
between, which the note of the fit says.

The table is PyPI's first upload time of each release's files
(https://pypi.org/pypi/vllm/json, retrieved 2026-12-05), final releases and post releases
only (no release candidates or dev builds). Pure data and one lookup; no I/O.
"""

from __future__ import annotations

__all__ = ["VLLM_RELEASES", "vllm_release_at"]

#: (version, first PyPI upload date YYYY-MM-DD), in release order.
VLLM_RELEASES = (
    ("0.0.1", "2023-06-19"),
    ("0.1.0", "2023-06-20"),
    ("0.1.1", "2023-06-22"),
    ("0.1.2", "2023-07-05"),
    ("0.1.3", "2023-08-02"),
    ("0.1.4", "2023-08-25"),
    ("0.1.5", "2023-09-08"),
    ("0.1.6", "2023-09-08"),
    ("0.1.7", "2023-09-11"),
    ("0.2.0", "2023-09-28"),
    ("0.2.1", "2023-10-16"),
    ("0.2.1.post1", "2023-10-17"),
    ("0.2.2", "2023-11-19"),
    ("0.2.3", "2023-12-03"),
    ("0.2.4", "2023-12-11"),
    ("0.2.5", "2023-12-14"),
    ("0.2.6", "2023-12-17"),
    ("0.2.7", "2024-01-04"),
    ("0.3.0", "2024-01-31"),
    ("0.3.1", "2024-02-17"),
    ("0.3.2", "2024-02-21"),
    ("0.3.3", "2024-03-01"),
    ("0.4.0", "2024-03-31"),
    ("0.4.0.post1", "2024-04-03"),
    ("0.4.1", "2024-04-24"),
    ("0.4.2", "2024-05-05"),
    ("0.4.3", "2024-06-01"),
    ("0.5.0", "2024-06-11"),
    ("0.5.0.post1", "2024-06-14"),
    ("0.5.1", "2024-07-06"),
    ("0.5.2", "2024-07-15"),
    ("0.5.3", "2024-07-23"),
    ("0.5.3.post1", "2024-07-23"),
    ("0.5.4", "2024-08-05"),
    ("0.5.5", "2024-08-23"),
    ("0.6.0", "2024-09-05"),
    ("0.6.1", "2024-09-11"),
    ("0.6.1.post1", "2024-09-13"),
    ("0.6.1.post2", "2024-09-13"),
    ("0.6.2", "2024-09-25"),
    ("0.6.3", "2024-10-14"),
    ("0.6.3.post1", "2024-10-17"),
    ("0.6.4", "2024-11-15"),
    ("0.6.4.post1", "2024-11-15"),
    ("0.6.5", "2024-12-18"),
    ("0.6.6", "2024-12-27"),
    ("0.6.6.post1", "2024-12-27"),
    ("0.7.0", "2025-01-27"),
    ("0.7.1", "2025-02-01"),
    ("0.7.2", "2025-02-06"),
    ("0.7.3", "2025-02-20"),
    ("0.8.0", "2025-03-18"),
    ("0.8.1", "2025-03-19"),
    ("0.8.2", "2025-03-25"),
    ("0.8.3", "2025-04-06"),
    ("0.8.4", "2025-04-15"),
    ("0.8.5", "2025-04-28"),
    ("0.8.5.post1", "2025-05-02"),
    ("0.9.0", "2025-05-28"),
    ("0.9.0.1", "2025-05-30"),
    ("0.9.1", "2025-06-10"),
    ("0.9.2", "2025-07-08"),
    ("0.10.0", "2025-07-25"),
    ("0.10.1", "2025-08-19"),
    ("0.10.1.1", "2025-08-20"),
    ("0.10.2", "2025-09-13"),
    ("0.11.0", "2025-10-04"),
    ("0.11.1", "2025-11-19"),
    ("0.11.2", "2025-11-20"),
    ("0.12.0", "2025-12-03"),
    ("0.13.0", "2025-12-19"),
    ("0.14.0", "2026-01-20"),
    ("0.14.1", "2026-01-24"),
    ("0.15.0", "2026-01-29"),
    ("0.15.1", "2026-02-05"),
    ("0.16.0", "2026-02-26"),
    ("0.17.0", "2026-03-07"),
    ("0.17.1", "2026-03-11"),
    ("0.18.0", "2026-03-20"),
    ("0.18.1", "2026-03-31"),
    ("0.19.0", "2026-04-03"),
    ("0.19.1", "2026-04-18"),
    ("0.20.0", "2026-04-27"),
    ("0.20.1", "2026-05-03"),
    ("0.20.2", "2026-05-10"),
    ("0.21.0", "2026-05-15"),
    ("0.22.0", "2026-05-29"),
    ("0.22.1", "2026-06-05"),
    ("0.23.0", "2026-06-13"),
    ("0.24.0", "2026-06-30"),
    ("0.25.0", "2026-07-11"),
    ("0.25.1", "2026-07-14"),
    ("0.26.0", "2026-07-25"),
    ("0.27.0", "2026-08-10"),
    ("0.27.1", "2026-08-11"),
    ("0.28.0", "2026-08-26"),
    ("0.29.0", "2026-09-09"),
    ("0.30.0", "2026-09-22"),
    ("0.31.0", "2026-10-05"),
    ("0.32.0", "2026-10-18"),
    ("0.33.0", "2026-11-02"),
    ("0.34.0", "2026-11-16"),
)


def vllm_release_at(date) -> str | None:
    """The newest vLLM release published on or before ``date``.

    Parameters
    ----------
    date : str or None
        ``YYYY-MM-DD`` or ``YYYY-MM`` (a month counts from its last day), as profiles record
        ``provenance.date``; anything else (or None) gives None.

    Returns
    -------
    str or None
        The version string, or None before the first release or for an unreadable date.

    Examples
    --------
    >>> vllm_release_at("2025-09-28"), vllm_release_at("2025-08-19"), vllm_release_at("2023-01-01")
    ('0.10.2', '0.10.1', None)
    """
    if not isinstance(date, str):
        return None
    text = date.strip()[:10]
    if len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit():
        text += "-31"  # a month: the newest release within it is possible
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not (text[:4] + text[5:7] + text[8:]).isdigit():
        return None
    best = None
    for version, released in VLLM_RELEASES:
        if released <= text:
            best = version
    return best
