"""Units: bytes inside the package, GiB (2**30) or GB (1e9) only at the edges.

Every public field and column that carries memory says its unit in its name
(``weights_gib``, ``value_mb``). Conversions here are exact.
"""

from __future__ import annotations

BYTES_PER_GIB = 2**30
BYTES_PER_MIB = 2**20
BYTES_PER_GB = 10**9
BYTES_PER_MB = 10**6

#: Unit suffix used in field names -> bytes per unit.
UNIT_BYTES = {
    "gib": BYTES_PER_GIB,
    "mib": BYTES_PER_MIB,
    "gb": BYTES_PER_GB,
    "mb": BYTES_PER_MB,
    "bytes": 1,
}


def to_bytes(value, unit: str):
    """Convert ``value`` expressed in ``unit`` (gib, mib, gb, mb, bytes) to bytes."""
    try:
        factor = UNIT_BYTES[unit.lower()]
    except KeyError:
        raise ValueError(f"unknown memory unit {unit!r}; expected one of {sorted(UNIT_BYTES)}") from None
    return value * factor


def bytes_to_gib(n_bytes):
    """Bytes -> GiB (2**30 bytes)."""
    return n_bytes / BYTES_PER_GIB


def gib_to_bytes(gib):
    """GiB (2**30 bytes) -> bytes."""
    return gib * BYTES_PER_GIB


def convert(value, from_unit: str, to_unit: str):
    """Convert a memory amount between units exactly (up to float rounding)."""
    return to_bytes(value, from_unit) / UNIT_BYTES[to_unit.lower()]
