"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

Readers (and a concurrent writer) never see a partial file. ``mkstemp`` creates files
``0600``; published files are made ``0644`` like any file written with ``open``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

_MODE = 0o644


@contextlib.contextmanager
def atomic_path(target, *, suffix: str = ".tmp"):
    """Yield a temporary path beside ``target``; move it onto ``target`` on success.

    For writers that need a file name (``matplotlib``'s ``savefig``). On error the
    temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _MODE)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(target, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` newlines) to ``target`` atomically; return the path."""
    target = Path(target)
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return target
