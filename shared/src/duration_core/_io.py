"""Small file helpers shared by the dataset cache and the model artifacts."""

from __future__ import annotations

import os
import threading

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
