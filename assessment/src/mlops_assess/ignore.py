"""Which files Git ignores: ``.gitignore`` files (at every depth) and ``.git/info/exclude``.

A file Git ignores is not part of the repository a clone sees (trained models, generated
reports, local environments), so it is not evidence of what the team ships. Patterns follow
Git's rules (``pathspec``'s ``GitIgnoreSpec``): each ``.gitignore`` applies to its folder and
below, a deeper file's verdict (including ``!`` re-inclusion) overrides a shallower one's, and
nothing inside an ignored folder can be re-included because Git never enters it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathspec import GitIgnoreSpec


@dataclass(frozen=True)
class IgnoreRules:
    """The ignore files that apply in one folder, shallowest first.

    Each entry is ``(folder, spec)``: the folder (relative POSIX path, ``""`` for the root)
    whose ``.gitignore`` gave ``spec``.
    """

    specs: tuple[tuple[str, GitIgnoreSpec], ...] = ()

    def with_file(self, folder: str, text: str) -> tuple[IgnoreRules, list[str]]:
        """These rules plus an ignore file's ``text`` read in ``folder``.

        Returns:
            The rules, and one problem per line Git cannot use (that line is left out, as
            Git leaves it out), e.g. ``"line 3: '!' is not a valid pattern (left out)"``.
        """
        lines: list[str] = []
        problems: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                GitIgnoreSpec.from_lines([line])
            except ValueError:  # GitWildMatchPatternError (0.12) / GitIgnorePatternError (1.x)
                problems.append(f"line {number}: {line[:80]!r} is not a valid pattern (left out)")
                continue
            lines.append(line)
        spec = GitIgnoreSpec.from_lines(lines)
        if not spec.patterns:
            return self, problems
        return IgnoreRules((*self.specs, (folder, spec))), problems

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether Git ignores ``rel`` (a path relative to the root) by these rules."""
        for folder, spec in reversed(self.specs):
            inside = rel[len(folder) + 1 :] if folder else rel
            verdict = spec.check_file(inside + "/" if is_dir else inside).include
            if verdict is not None:
                return verdict
        return False
