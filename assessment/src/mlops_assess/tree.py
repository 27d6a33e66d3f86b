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
import stat
from collections.abc import Iterator
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
    """``(text, None)`` for a readable UTF-8 text file, else ``(None, why it was not read)``.

    The file is opened without blocking and checked to be a regular file *after* opening: a
    file replaced by a FIFO or a device between listing and reading is refused, not waited on.
    """
    try:
        with open(path, "rb", opener=_open_nonblocking) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None, "not read: not a regular file"
            if info.st_size > MAX_READ_BYTES:
                return None, (
                    f"not read: {info.st_size / 2**20:.1f} MiB, larger than the "
                    f"{MAX_READ_BYTES // 2**20} MiB limit"
                )
            data = handle.read(MAX_READ_BYTES + 1)
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if len(data) > MAX_READ_BYTES:  # it grew while being read
        return None, f"not read: larger than the {MAX_READ_BYTES // 2**20} MiB limit"
    if b"\x00" in data[:8192]:
        return None, "not read: binary content (NUL bytes)"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"not read: not UTF-8 text (byte {exc.start})"


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


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
    walker.walk(root, rules)
    # Linked folders after every real one: a folder a link points to keeps its real path
    # (``a/b -> ../b`` must not list ``b``'s files as ``a/b/...``, nor hide them from ``b``).
    walker.follow_links()
    return repo


class _Walker:
    """Depth first, each folder's entries in name order, with an explicit stack (a tree
    deeper than Python's recursion limit is walked like any other)."""

    def __init__(self, root: Path, repo: RepoFiles) -> None:
        self.root = root
        self.repo = repo
        self.seen: set[str] = set()
        #: Symbolic links, followed after every real folder: (link, rules, inside ignored).
        self.links: list[tuple[Path, IgnoreRules, bool]] = []
        #: Real paths of folders left out (ignored, or skipped like .git): no link leads in.
        self.excluded: list[str] = []
        self.root_real = os.path.realpath(root)
        self.root_prefix = len(str(root)) + 1

    def inside_repository(self, path: str) -> bool:
        target = os.path.realpath(path)
        return os.path.commonpath([self.root_real, target]) == self.root_real

    def read_rules(self, rules: IgnoreRules, rel: str, folder: str) -> IgnoreRules:
        path = self.root / rel
        if not path.is_file():
            return rules
        if path.is_symlink() and not self.inside_repository(str(path)):
            self.repo.note(rel, "not used: symbolic link that leaves the repository")
            return rules
        text = self.repo.read_text(rel)
        if text is None:
            return rules
        rules, problems = rules.with_file(folder, text)
        if problems:
            self.repo.note(rel, "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))
        return rules

    def walk(self, directory: Path, rules: IgnoreRules, ignored_parent: bool = False) -> None:
        stack = []
        opened = self._open(directory, rules, ignored_parent)
        if opened is not None:
            stack.append(opened)
        while stack:
            entries, rules, ignored_parent = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            rel = entry.path[self.root_prefix :].replace(os.sep, "/")
            try:
                child = self._visit(entry, rel, rules, ignored_parent)
            except OSError as exc:
                self.repo.note(rel, f"cannot be examined: {exc.strerror or exc}")
                continue
            if child is not None:
                opened = self._open(*child)
                if opened is not None:
                    stack.append(opened)

    def follow_links(self) -> None:
        """The links found by :meth:`walk`, once every real folder is known."""
        while self.links:
            link, rules, ignored_parent = self.links.pop(0)
            rel = _rel(self.root, link)
            real = os.path.realpath(link)
            if any(real == f or real.startswith(f + os.sep) for f in self.excluded):
                self.repo.note(rel, "not followed: symbolic link into a folder that is left out")
                continue
            if link.is_dir():
                self.walk(link, rules, ignored_parent)
            else:
                self.repo.files.append(rel)

    def _open(
        self, directory: Path, rules: IgnoreRules, ignored_parent: bool
    ) -> tuple[Iterator[os.DirEntry[str]], IgnoreRules, bool] | None:
        real = os.path.realpath(directory)
        if real in self.seen:
            return None
        self.seen.add(real)
        here = _rel(self.root, directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            self.repo.note(here or ".", f"folder cannot be listed: {exc.strerror or exc}")
            return None
        if any(e.name == ".gitignore" for e in entries):
            rules = self.read_rules(rules, f"{here}/.gitignore" if here else ".gitignore", here)
        return iter(entries), rules, ignored_parent

    def _visit(
        self, entry: os.DirEntry[str], rel: str, rules: IgnoreRules, ignored_parent: bool
    ) -> tuple[Path, IgnoreRules, bool] | None:
        """Record one entry; a folder to enter comes back as ``(path, rules, ignored)``."""
        repo = self.repo
        path = Path(entry.path)
        is_link = entry.is_symlink()
        if is_link and not self.inside_repository(entry.path):
            repo.note(rel, "not followed: symbolic link that leaves the repository")
            return None
        is_dir = entry.is_dir()
        on_scope_path = bool(repo.scope) and under(repo.scope, rel)  # the scope or above it
        if ignored_parent and not on_scope_path:
            repo.ignored += 1  # inside an ignored folder that holds the assessed one
            return None
        if is_dir:
            if (
                entry.name in SKIPPED_DIRS
                or entry.name.endswith(".egg-info")
                or (path / "pyvenv.cfg").exists()
            ):
                self.excluded.append(os.path.realpath(path))
                return None
            inside_ignored = ignored_parent or (rules.active and rules.ignored(rel, True))
            if inside_ignored and not on_scope_path:
                repo.ignored += 1
                self.excluded.append(os.path.realpath(path))
                return None
            if inside_ignored and rel == repo.scope:
                rules, inside_ignored = IgnoreRules(), False  # asked for: read it whole
            if is_link:
                self.links.append((path, rules, bool(inside_ignored)))
                return None
            return path, rules, bool(inside_ignored)
        if entry.is_file():
            if rules.active and rules.ignored(rel, False):
                repo.ignored += 1
            elif is_link:
                self.links.append((path, rules, False))
            else:
                repo.files.append(rel)
        elif is_link:
            repo.note(rel, "not followed: broken symbolic link")
        return None


def under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or inside it (``""`` is the whole repository)."""
    return not folder or path == folder or path.startswith(folder.rstrip("/") + "/")


def _rel(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return "" if rel == "." else rel
