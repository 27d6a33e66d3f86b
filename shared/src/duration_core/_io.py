"""Small file helpers shared by the dataset cache and the model artifacts."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_umask_lock = threading.Lock()


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (e.g. 0o644).

    ``tempfile.mkstemp`` creates files 0o600 whatever the umask; a file renamed into place
    from it would be unreadable to other users (a service running under its own account).
    """
    with _umask_lock:  # reading the umask means setting it; keep that window private
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_write(target: Path, suffix: str = ".tmp") -> Iterator[tuple[BinaryIO, Path]]:
    """Write ``target`` all at once: readers see the old file or the whole new one.

    Yields an open binary file and its path: a hidden temporary file beside ``target`` (same
    file system, so the final rename is atomic). When the block ends normally the file gets
    the umask's mode and replaces ``target``; when it raises, the temporary file is removed
    and ``target`` is untouched.

    Raises:
        OSError: The folder cannot be created or written, or the rename fails.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp
        tmp.chmod(default_file_mode())
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
