"""Which files Git ignores: ``.gitignore`` files (at every depth) and ``.git/info/exclude``.

A file Git ignores is not part of the repository a clone sees (trained models, generated
reports, local environments), so it is not evidence of what the team ships. Each line is
compiled by ``pathspec`` (Git's wildmatch syntax); which line decides is Git's rule
(gitignore(5)), kept here: each ``.gitignore`` applies to its folder and below, the last line
that matches a path itself decides (a deeper file's lines come later, ``!`` re-includes), a
``dir/`` line matches folders only, and the walk never enters an ignored folder, so nothing in
it can be re-included. pathspec's own matching also counts a match of any parent folder, which
would break that last rule (``src/*`` then ``!/src`` would bring ``src/sub`` back), hence
:func:`_matches_itself`. The tests compare the result with ``git ls-files``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathspec import GitIgnoreSpec


@dataclass(frozen=True)
class _Pattern:
    folder: str  # where its .gitignore lives ("" for the root)
    directories_only: bool  # the line ended with "/"
    include: bool  # True: ignore; False: a "!" re-inclusion
    pattern: Any  # pathspec's compiled pattern (match_file)


@dataclass(frozen=True)
class IgnoreRules:
    """The ignore patterns that apply in one folder, in Git's order (shallowest file first,
    each file's lines in order); the last pattern that matches a path decides."""

    patterns: tuple[_Pattern, ...] = ()

    @property
    def active(self) -> bool:
        """Whether there is any pattern at all (a cheap test before matching)."""
        return bool(self.patterns)

    def with_file(self, folder: str, text: str) -> tuple[IgnoreRules, list[str]]:
        """These rules plus an ignore file's ``text`` read in ``folder``.

        Returns:
            The rules, and one problem per line Git cannot use (that line is left out, as
            Git leaves it out), e.g. ``"line 3: '!' is not a valid pattern (left out)"``.
        """
        added: list[_Pattern] = []
        problems: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                compiled = GitIgnoreSpec.from_lines([line]).patterns
            except ValueError:  # GitWildMatchPatternError (0.12) / GitIgnorePatternError (1.x)
                problems.append(f"line {number}: {line[:80]!r} is not a valid pattern (left out)")
                continue
            if not compiled or compiled[0].include is None:  # a comment or a blank line
                continue
            pattern = compiled[0]
            directories_only = line.rstrip(" ").rstrip("\\").endswith("/")
            added.append(_Pattern(folder, directories_only, bool(pattern.include), pattern))
        return IgnoreRules((*self.patterns, *added)), problems

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether Git ignores ``rel`` (a path relative to the root), a folder when
        ``is_dir``: the last pattern that matches it decides (``dir/`` patterns match
        folders only). A folder's contents are never asked about once it is ignored."""
        for item in reversed(self.patterns):
            if item.directories_only and not is_dir:
                continue
            inside = rel[len(item.folder) + 1 :] if item.folder else rel
            candidate = inside + "/" if item.directories_only else inside
            if _matches_itself(item.pattern, candidate):
                return item.include
        return False


def _matches_itself(pattern: Any, path: str) -> bool:
    """Whether ``pattern`` matches ``path`` itself. pathspec's patterns also match everything
    below a matching folder (their ``ps_d`` group: "src" matches "src/sub"); the walk never
    enters an ignored folder, so such matches must not count (Git: ``src/*`` then ``!/src``
    leaves ``src/sub`` ignored)."""
    has_folder_group = "ps_d" in pattern.regex.groupindex
    for match in pattern.regex.finditer(path):  # "*/" is "(?P<ps_d>/)": any slash may match
        if not has_folder_group or match.group("ps_d") is None:
            return True
        if match.end("ps_d") >= len(path):
            return True
    return False
