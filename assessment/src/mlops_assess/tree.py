"""Walk a repository without leaving it: which files exist, and reading them safely.

Nothing here imports or runs what it finds. Symbolic links are followed only when their target
is inside the repository root (each folder once, so a loop ends); folders that hold installed
or generated files (``.git``, virtual environments, ``node_modules``, caches, build output) are
not entered (nor any folder holding a ``pyvenv.cfg``), because evidence there belongs to
someone else's project.

Reading never raises: a file that cannot be read, is binary, is larger than
:data:`MAX_READ_BYTES` or is not UTF-8 gives a :class:`Note` instead, and the criteria that
would have used it say "evidence unreadable in FILE".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

#: Files larger than this are not read (5 MiB: larger than any CI file, manifest or source
#: module a person writes; generated or data files are not evidence).
MAX_READ_BYTES = 5 * 1024 * 1024

#: Folders never entered: version control, environments, caches and build output.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        "site-packages",
        "build",
        "dist",
        ".eggs",
        "mlruns",
        "mlartifacts",
    }
)


@dataclass(frozen=True)
class Note:
    """A file the assessor could not use, and why (``path`` is relative to the repository)."""

    path: str
    problem: str


@dataclass
class RepoFiles:
    """The files of one repository, as POSIX paths relative to its root.

    Attributes:
        root: the repository root (the folder with ``.git``, or the assessed folder).
        scope: the assessed folder relative to ``root`` (``""`` for the whole repository).
        files: every file found (relative paths), in walk order.
        notes: files and links that could not be used.
    """

    root: Path
    scope: str
    files: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    _text: dict[str, str | None] = field(default_factory=dict, repr=False)
    _noted: set[str] = field(default_factory=set, repr=False)

    def in_folder(self, folder: str) -> list[str]:
        """Files under ``folder`` (relative to the root; ``""`` is the whole repository)."""
        if not folder:
            return list(self.files)
        prefix = folder.rstrip("/") + "/"
        return [f for f in self.files if f.startswith(prefix)]

    def read_text(self, rel: str) -> str | None:
        """The file's text, or ``None`` (with a :class:`Note`) when it cannot be used."""
        if rel in self._text:
            return self._text[rel]
        text = self._read(rel)
        self._text[rel] = text
        return text

    def note(self, rel: str, problem: str) -> None:
        """Record that ``rel`` could not be used (once per file)."""
        if rel not in self._noted:
            self._noted.add(rel)
            self.notes.append(Note(rel, problem))

    def _read(self, rel: str) -> str | None:
        path = self.root / rel
        try:
            size = path.stat().st_size
        except OSError as exc:
            self.note(rel, f"cannot be read: {exc.strerror or exc}")
            return None
        if size > MAX_READ_BYTES:
            self.note(
                rel,
                f"not read: {size / 2**20:.1f} MiB, larger than the "
                f"{MAX_READ_BYTES // 2**20} MiB limit",
            )
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.note(rel, f"cannot be read: {exc.strerror or exc}")
            return None
        if b"\x00" in data[:8192]:
            self.note(rel, "not read: binary content (NUL bytes)")
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.note(rel, f"not read: not UTF-8 text (byte {exc.start})")
            return None


def repository_root(folder: Path) -> Path:
    """The nearest folder at or above ``folder`` holding ``.git``; ``folder`` itself if none."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def walk(folder: Path) -> RepoFiles:
    """List the repository that contains ``folder``, scoped to ``folder``.

    Args:
        folder: an existing directory (the assessed path).

    Returns:
        The repository's files; ``scope`` is ``folder`` relative to the repository root.
    """
    folder = folder.resolve()
    root = repository_root(folder)
    scope = folder.relative_to(root).as_posix()
    repo = RepoFiles(root=root, scope="" if scope == "." else scope)
    seen_dirs: set[str] = set()
    links: list[Path] = []
    _walk_dir(root, root, repo, seen_dirs, links)
    # Linked folders after every real one: a folder a link points to keeps its real path
    # (``a/b -> ../b`` must not list ``b``'s files as ``a/b/...``, nor hide them from ``b``).
    while links:
        _walk_dir(root, links.pop(0), repo, seen_dirs, links)
    return repo


def _walk_dir(
    root: Path, directory: Path, repo: RepoFiles, seen: set[str], links: list[Path]
) -> None:
    real = os.path.realpath(directory)
    if real in seen:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        rel = _rel(root, directory)
        repo.note(rel or ".", f"folder cannot be listed: {exc.strerror or exc}")
        return
    root_real = os.path.realpath(root)
    for entry in entries:
        path = Path(entry.path)
        rel = _rel(root, path)
        try:
            is_link = entry.is_symlink()
            if is_link:
                target = os.path.realpath(path)
                if os.path.commonpath([root_real, target]) != root_real:
                    repo.note(rel, "not followed: symbolic link that leaves the repository")
                    continue
            if entry.is_dir():
                if entry.name in SKIPPED_DIRS or entry.name.endswith(".egg-info"):
                    continue
                if (path / "pyvenv.cfg").exists():
                    continue
                if is_link:
                    links.append(path)
                else:
                    _walk_dir(root, path, repo, seen, links)
            elif entry.is_file():
                repo.files.append(rel)
            elif is_link:
                repo.note(rel, "not followed: broken symbolic link")
        except OSError as exc:
            repo.note(rel, f"cannot be examined: {exc.strerror or exc}")


def _rel(root: Path, path: Path) -> str:
    return PurePosixPath(path.relative_to(root).as_posix()).as_posix().removeprefix("./")
