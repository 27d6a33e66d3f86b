"""What a CI step really runs: ``tox -e X`` and ``make X`` expanded into their commands.

A CI file often says only ``tox -e level1``; the folder it tests is named in ``tox.ini``. The
expansion reads ``tox.ini`` (``[tox] env_list`` and ``[testenv:NAME] commands``, with
``{tox_root}`` dropped so paths read as repository paths) and Makefile recipes (one level of
prerequisites). nox sessions are kept as they are written.
"""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import dataclass, field

from mlops_assess.tree import RepoFiles

_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")
_INSTALL = re.compile(
    r"^\s*(python3?\s+-m\s+)?(pip|uv\s+pip|uv\s+sync|uv\s+add|poetry\s+install)\b"
)


@dataclass
class ToxConfig:
    """Environments of one ``tox.ini``: name -> its command lines, and the default env list."""

    path: str
    envs: dict[str, list[str]] = field(default_factory=dict)
    env_list: list[str] = field(default_factory=list)


@dataclass
class Makefile:
    """Targets of one Makefile: name -> (prerequisites, recipe lines)."""

    path: str
    targets: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)


def _expand_factors(spec: str) -> list[str]:
    match = _BRACES.search(spec)
    if not match:
        return [spec]
    head, tail = spec[: match.start()], spec[match.end() :]
    out: list[str] = []
    for option in match.group(1).split(","):
        out.extend(_expand_factors(head + option.strip() + tail))
    return out


def _clean(command: str) -> str:
    command = command.replace("{tox_root}/", "").replace("{toxinidir}/", "")
    return re.sub(r"\{posargs[^}]*\}", "", command).strip()


def read_tox(repo: RepoFiles, path: str) -> ToxConfig | None:
    """Parse ``path`` (a tox.ini); ``None`` (and a note) when it cannot be read."""
    text = repo.read_text(path)
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        repo.note(path, f"not an INI file: {str(exc).splitlines()[0]}")
        return None
    config = ToxConfig(path)
    if parser.has_section("tox"):
        raw = parser.get("tox", "env_list", fallback=parser.get("tox", "envlist", fallback=""))
        for item in re.split(r"[\s,]+", raw):
            if item:
                config.env_list.extend(_expand_factors(item))
    base = parser.get("testenv", "commands", fallback="") if parser.has_section("testenv") else ""
    for section in parser.sections():
        if not section.startswith("testenv:"):
            continue
        commands = parser.get(section, "commands", fallback=base)
        lines = [_clean(line) for line in commands.splitlines() if line.strip()]
        for name in _expand_factors(section.removeprefix("testenv:")):
            config.envs[name] = lines
    for name in config.env_list:
        config.envs.setdefault(name, [_clean(line) for line in base.splitlines() if line.strip()])
    return config


def read_makefile(repo: RepoFiles, path: str) -> Makefile | None:
    """Parse a Makefile's rules; ``None`` when it cannot be read."""
    text = repo.read_text(path)
    if text is None:
        return None
    makefile = Makefile(path)
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip().lstrip("@-"))
            continue
        match = re.match(r"^([A-Za-z0-9_./-]+)\s*:(?![=:])\s*([^#;]*)", line)
        if match:
            recipe: list[str] = []
            makefile.targets.setdefault(match.group(1), (match.group(2).split(), recipe))
            current = makefile.targets[match.group(1)][1]
        elif line.strip() and not line.startswith("#"):
            current = None
    return makefile


def is_install(command: str) -> bool:
    """Whether a command line only installs packages (it does not run the code it names)."""
    return bool(_INSTALL.match(command))


def expand(command: str, tox: ToxConfig | None, make: Makefile | None) -> list[str]:
    """The command lines that ``command`` runs: itself, plus tox envs' or make targets' lines."""
    out = [command]
    for line in command.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if not words:
            continue
        program = words[0].rsplit("/", 1)[-1]
        if program == "tox" and tox is not None:
            out.extend(_tox_lines(words[1:], tox))
        elif program == "make" and make is not None:
            for target in [w for w in words[1:] if not w.startswith("-") and "=" not in w]:
                out.extend(_make_lines(target, make, depth=0))
    return out


def _tox_lines(args: list[str], tox: ToxConfig) -> list[str]:
    envs: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in {"-e", "--env"} and i + 1 < len(args):
            envs.extend(e for e in args[i + 1].split(",") if e)
        elif arg.startswith("-e") and len(arg) > 2:
            envs.extend(e for e in arg[2:].split(",") if e)
    if not envs and (not args or args[0] in {"run", "r", "--"} or args[0].startswith("-")):
        envs = list(tox.env_list)
    lines: list[str] = []
    for env in envs:
        lines.extend(f"{line}  (tox env {env}, {tox.path})" for line in tox.envs.get(env, []))
    return lines


def _make_lines(target: str, make: Makefile, depth: int) -> list[str]:
    if target not in make.targets or depth > 2:
        return []
    prerequisites, recipe = make.targets[target]
    lines = [f"{line}  (make {target}, {make.path})" for line in recipe]
    for prerequisite in prerequisites:
        lines.extend(_make_lines(prerequisite, make, depth + 1))
    return lines
