"""Benchmark: ``mlops_assess.assess()`` on a generated monorepo, against listing and reading it.

The tree resembles a real monorepo of N files (default 20,000): packages, each with a
``pyproject.toml``, a README, ``src/`` modules that import and call one another and ML
libraries (MLflow, scikit-learn, pandas), tests, the odd notebook and data files (CSV, JSON,
Parquet-like bytes); at the root a ``tox.ini`` and GitHub workflows that test, release, train
and deploy some packages. Generation is seeded, so every run assesses the same tree.

Two figures, measured in the same run on the same tree (already in the page cache, since it
was just written):

- the reference: ``os.walk`` over the tree plus reading every file's bytes, the least any
  tool that looks at every file must do;
- ``assess()`` on the whole tree: walking, reading, parsing every Python file and notebook,
  the CI files and manifests, and evaluating every criterion; once with one worker process
  per core (the default) and once in this process alone (``workers=1``), which must agree.

The target is under 10 seconds for 20,000 files.

Usage: ``python assessment/benchmarks/bench_assess.py [--files 20000] [--repeat 1] [--json]``
(or ``tox -e bench-assess``). Prints a table; ``--json`` prints the figures as JSON too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from mlops_assess.assess import assess
from mlops_assess.sources import default_workers

TARGET_SECONDS = 10.0
TARGET_FILES = 20_000
FILES_PER_PACKAGE = 200

LIBRARIES = [
    "import numpy as np",
    "import pandas as pd",
    "import mlflow",
    "from sklearn.linear_model import LinearRegression",
    "from sklearn.pipeline import make_pipeline",
    "import json",
    "import logging",
    "from pathlib import Path",
]

WORKFLOWS = {
    "ci.yml": """
        name: ci
        on:
          push:
            branches: [main]
          pull_request:
        jobs:
          test:
            runs-on: ubuntu-latest
            strategy:
              matrix:
                env: [{envs}]
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@v5
                with:
                  python-version: "3.11"
              - run: pip install tox
              - run: tox -e ${{{{ matrix.env }}}}
    """,
    "release.yml": """
        on:
          push:
            tags: ["v*"]
        jobs:
          dists:
            runs-on: ubuntu-latest
            steps:
              - run: python -m build --outdir dist {first}
              - uses: pypa/gh-action-pypi-publish@release/v1
    """,
    "train.yml": """
        on:
          schedule:
            - cron: "0 3 1 * *"
          workflow_dispatch:
        jobs:
          train:
            runs-on: ubuntu-latest
            steps:
              - run: pip install -e {first}
              - run: {first_script} train --month latest
    """,
    "deploy.yml": """
        on: workflow_dispatch
        jobs:
          deploy:
            runs-on: ubuntu-latest
            environment: production
            steps:
              - run: {first_script} deploy models:/model@champion
    """,
}


def _module(rng: random.Random, package: str, index: int, siblings: int) -> str:
    imports = rng.sample(LIBRARIES, k=rng.randint(2, 5))
    local = rng.randrange(siblings)
    imports.append(f"from {package}.mod_{local:04d} import helper_{local}")
    body = []
    for number in range(rng.randint(3, 8)):
        name = rng.choice(["load", "transform", "score", "fit_model", "validate", "report"])
        calls = rng.sample(
            [
                "frame = pd.DataFrame(rows)",
                "values = np.asarray(frame['trip_distance'], dtype=float)",
                "model = make_pipeline(LinearRegression())",
                "model.fit(values.reshape(-1, 1), values)",
                "prediction = model.predict(values.reshape(-1, 1))",
                "logging.getLogger(__name__).info('rows %d', len(rows))",
                "text = json.dumps({'rows': len(rows), 'name': name})",
                "path = Path(name).with_suffix('.json')",
                f"extra = helper_{local}(rows)",
            ],
            k=rng.randint(2, 6),
        )
        lines = "\n".join(f"    {call}" for call in calls)
        body.append(
            f"def {name}_{index}_{number}(rows: list[dict], name: str = 'x') -> object:\n"
            f'    """{name.replace("_", " ").capitalize()} step {number}."""\n'
            f"{lines}\n"
            f"    return rows\n"
        )
    helper = f"def helper_{index}(rows):\n    return [r for r in rows if r]\n"
    return "\n".join(imports) + "\n\n\n" + "\n\n".join([helper, *body])


def _test(rng: random.Random, package: str, index: int) -> str:
    tests = "\n\n".join(
        f"def test_case_{index}_{n}():\n    assert helper_{index}([{n}, 0]) == [{n}]\n"
        for n in range(1, rng.randint(2, 6))
    )
    return f"from {package}.mod_{index:04d} import helper_{index}\n\n\n{tests}"


def _notebook(index: int) -> str:
    cells = [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": f"# Exploration {index}"},
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "%matplotlib inline\nimport pandas as pd\nframe = pd.read_parquet('x')",
        },
        {
            "cell_type": "code",
            "id": "c2",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "frame.describe()",
        },
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1)


def generate(root: Path, files: int, seed: int = 42) -> int:
    """Write a monorepo of exactly ``files`` files under ``root``; returns the count."""
    rng = random.Random(seed)
    (root / ".git").mkdir(parents=True)
    packages = max(1, -(-(files - 6) // FILES_PER_PACKAGE))
    names = [f"svc_{n:03d}" for n in range(packages)]
    written = 0

    def write(rel: str, content: str | bytes) -> None:
        nonlocal written
        if written >= files:
            return
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        written += 1

    first = names[0]
    script = first.replace("_", "-")
    envs = ", ".join(names[: min(len(names), 8)])
    for name, template in WORKFLOWS.items():
        text = template.format(envs=envs, first=first, first_script=script)
        write(f".github/workflows/{name}", textwrap.dedent(text).lstrip())
    tox = ["[tox]", f"env_list = {', '.join(names[:8])}", ""]
    for name in names[:8]:
        tox += [f"[testenv:{name}]", f"commands = pytest {{tox_root}}/{name} {{posargs}}", ""]
    write("tox.ini", "\n".join(tox))
    write("README.md", "# A generated monorepo\n")

    per_package = -(-(files - written) // packages)
    for name in names:
        budget = min(per_package, files - written)
        if budget <= 0:
            break
        dist = name.replace("_", "-")
        write(
            f"{name}/pyproject.toml",
            f'[project]\nname = "{dist}"\nversion = "0.1.0"\n'
            'dependencies = ["numpy>=1.26", "pandas>=2.1", "scikit-learn>=1.4", "mlflow>=2.10"]\n'
            f'[project.scripts]\n{dist} = "{name}.cli:main"\n',
        )
        write(f"{name}/README.md", f"# {name}\n\nOne package of the generated monorepo.\n")
        rest = budget - 2
        modules = max(1, int(rest * 0.72))
        tests = int(rest * 0.16)
        notebooks = max(0, int(rest * 0.02))
        data = rest - modules - tests - notebooks
        for index in range(modules):
            folder = f"{name}/src/{name}/sub_{index // 40}"
            write(f"{folder}/mod_{index:04d}.py", _module(rng, name, index, modules))
        for index in range(tests):
            write(f"{name}/tests/test_mod_{index:04d}.py", _test(rng, name, index % modules))
        for index in range(notebooks):
            write(f"{name}/notebooks/explore_{index:03d}.ipynb", _notebook(index))
        for index in range(data):
            if index % 3 == 0:
                rows = "".join(f"{i},{rng.random():.6f},{rng.randint(1, 265)}\n" for i in range(50))
                write(f"{name}/data/sample_{index:04d}.csv", "id,distance,zone\n" + rows)
            elif index % 3 == 1:
                write(f"{name}/data/config_{index:04d}.json", json.dumps({"index": index}))
            else:
                write(f"{name}/data/blob_{index:04d}.parquet", b"PAR1\x00" + rng.randbytes(2048))
    return written


def reference(root: Path) -> tuple[int, float]:
    """List the tree with os.walk and read every file's bytes: (files, seconds)."""
    start = time.perf_counter()
    count = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:  # noqa: PTH123, PTH118
                handle.read()
            count += 1
    return count, time.perf_counter() - start


def measure_assess(root: Path, workers: int | None = None) -> tuple[int, float, int]:
    """``assess()`` on the whole tree: (files, seconds, level)."""
    start = time.perf_counter()
    assessment = assess(root, workers=workers)
    seconds = time.perf_counter() - start
    return assessment.files, seconds, assessment.level


def main() -> int:
    parser = argparse.ArgumentParser(description="mlops-assess against listing and reading")
    parser.add_argument("--files", type=int, default=TARGET_FILES, help="files in the tree")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the fastest counts")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated tree")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.files < 10:
        parser.error("--files must be at least 10")

    workers = default_workers()
    with tempfile.TemporaryDirectory(prefix="bench-assess-") as tmp:
        root = Path(tmp) / "monorepo"
        start = time.perf_counter()
        written = generate(root, args.files, args.seed)
        generated = time.perf_counter() - start
        print(f"generated {written:,} files in {generated:.1f} s under {root}")

        ref_runs = [reference(root) for _ in range(max(1, args.repeat))]
        ref_files, ref_seconds = min(ref_runs, key=lambda run: run[1])
        runs = [measure_assess(root) for _ in range(max(1, args.repeat))]
        files, seconds, level = min(runs, key=lambda run: run[1])
        serial_runs = [measure_assess(root, workers=1) for _ in range(max(1, args.repeat))]
        _, serial_seconds, serial_level = min(serial_runs, key=lambda run: run[1])
        if serial_level != level:
            raise SystemExit(f"one process found level {serial_level}, {workers} found {level}")

    target = TARGET_SECONDS * files / TARGET_FILES
    results: dict[str, Any] = {
        "files": files,
        "reference": {
            "files": ref_files,
            "seconds": ref_seconds,
            "files_per_s": ref_files / ref_seconds,
        },
        "assess": {
            "files": files,
            "seconds": seconds,
            "files_per_s": files / seconds,
            "level": level,
            "workers": workers,
        },
        "assess_one_process": {"seconds": serial_seconds, "files_per_s": files / serial_seconds},
        "ratio": seconds / ref_seconds,
        "target_seconds": target,
        "under_target": seconds < target,
    }
    print(f"{'method':<34}{'files':>9}{'seconds':>10}{'files/s':>12}")
    print(
        f"{'os.walk + read every file':<34}{ref_files:>9,}{ref_seconds:>10.2f}"
        f"{ref_files / ref_seconds:>12,.0f}"
    )
    print(
        f"{'assess(), one process':<34}{files:>9,}{serial_seconds:>10.2f}"
        f"{files / serial_seconds:>12,.0f}"
    )
    label = f"assess(), {workers} worker processes"
    print(f"{label:<34}{files:>9,}{seconds:>10.2f}{files / seconds:>12,.0f}")
    print(f"assess() takes {seconds / ref_seconds:.1f}x the reference; level found: {level}")
    verdict = "under" if seconds < target else "OVER"
    print(
        f"{verdict} the target of {target:.1f} s ({TARGET_SECONDS:g} s per {TARGET_FILES:,} files)"
    )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
