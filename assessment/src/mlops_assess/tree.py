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
from pathlib import Path

from mlops_assess.ignore import IgnoreRules

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
        ignored: files and folders left out because Git ignores them.
    """

    root: Path
    scope: str
    files: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    ignored: int = 0
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
        text, problem = read_file(self.root / rel)
        if problem is not None:
            self.note(rel, problem)
        return text


def read_file(path: Path) -> tuple[str | None, str | None]:
    """``(text, None)`` for a readable UTF-8 text file, else ``(None, why it was not read)``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if size > MAX_READ_BYTES:
        return None, (
            f"not read: {size / 2**20:.1f} MiB, larger than the {MAX_READ_BYTES // 2**20} MiB limit"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if b"\x00" in data[:8192]:
        return None, "not read: binary content (NUL bytes)"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"not read: not UTF-8 text (byte {exc.start})"


def file_name(path: str) -> str:
    """The last part of a relative POSIX path (``PurePosixPath(path).name``, without the cost)."""
    return path.rsplit("/", 1)[-1]


def repository_root(folder: Path) -> Path:
    """The nearest folder at or above ``folder`` holding ``.git``; ``folder`` itself if none."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def walk(folder: Path) -> RepoFiles:
    """List the repository that contains ``folder``, scoped to ``folder``.

    Files Git ignores (see :mod:`mlops_assess.ignore`) are left out and counted in
    ``ignored``; an assessed folder that Git ignores is read whole (only ``.gitignore``
    files inside it apply there): asking for it is asking for its files.

    Args:
        folder: an existing directory (the assessed path).

    Returns:
        The repository's files; ``scope`` is ``folder`` relative to the repository root.
    """
    folder = folder.resolve()
    root = repository_root(folder)
    scope = folder.relative_to(root).as_posix()
    repo = RepoFiles(root=root, scope="" if scope == "." else scope)
    walker = _Walker(root, repo)
    rules = walker.read_rules(IgnoreRules(), ".git/info/exclude", "")
    walker.walk_dir(root, rules)
    # Linked folders after every real one: a folder a link points to keeps its real path
    # (``a/b -> ../b`` must not list ``b``'s files as ``a/b/...``, nor hide them from ``b``).
    while walker.links:
        path, rules = walker.links.pop(0)
        walker.walk_dir(path, rules)
    return repo


class _Walker:
    def __init__(self, root: Path, repo: RepoFiles) -> None:
        self.root = root
        self.repo = repo
        self.seen: set[str] = set()
        self.links: list[tuple[Path, IgnoreRules]] = []
        self.root_real = os.path.realpath(root)
        self.root_prefix = len(str(root)) + 1

    def read_rules(self, rules: IgnoreRules, rel: str, folder: str) -> IgnoreRules:
        if not (self.root / rel).is_file():
            return rules
        text = self.repo.read_text(rel)
        if text is None:
            return rules
        rules, problems = rules.with_file(folder, text)
        if problems:
            self.repo.note(rel, "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))
        return rules

    def walk_dir(self, directory: Path, rules: IgnoreRules) -> None:
        repo = self.repo
        real = os.path.realpath(directory)
        if real in self.seen:
            return
        self.seen.add(real)
        here = _rel(self.root, directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            repo.note(here or ".", f"folder cannot be listed: {exc.strerror or exc}")
            return
        if any(e.name == ".gitignore" for e in entries):
            rules = self.read_rules(rules, f"{here}/.gitignore" if here else ".gitignore", here)
        for entry in entries:
            path = Path(entry.path)
            rel = entry.path[self.root_prefix :].replace(os.sep, "/")
            try:
                is_link = entry.is_symlink()
                if is_link:
                    target = os.path.realpath(path)
                    if os.path.commonpath([self.root_real, target]) != self.root_real:
                        repo.note(rel, "not followed: symbolic link that leaves the repository")
                        continue
                if entry.is_dir():
                    if entry.name in SKIPPED_DIRS or entry.name.endswith(".egg-info"):
                        continue
                    if (path / "pyvenv.cfg").exists():
                        continue
                    inner = rules
                    if rules.specs and rules.ignored(rel, True):
                        if not under(repo.scope, rel):
                            repo.ignored += 1
                            continue
                        inner = IgnoreRules()  # the assessed folder is read, ignored or not
                    if is_link:
                        self.links.append((path, inner))
                    else:
                        self.walk_dir(path, inner)
                elif entry.is_file():
                    if rules.specs and rules.ignored(rel, False):
                        repo.ignored += 1
                        continue
                    repo.files.append(rel)
                elif is_link:
                    repo.note(rel, "not followed: broken symbolic link")
            except OSError as exc:
                repo.note(rel, f"cannot be examined: {exc.strerror or exc}")


def under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or inside it (``""`` is the whole repository)."""
    return not folder or path == folder or path.startswith(folder.rstrip("/") + "/")


def _rel(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return "" if rel == "." else rel
