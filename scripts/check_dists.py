"""Build the distributions and prove they work when installed alone (`tox -e build`).

1. Build the sdist and the wheel of each of the six distributions (duration-core,
   duration-service, duration-training, duration-deployment, duration-operations,
   mlops-assess) with
   `python -m build` (the
   wheel is built FROM the sdist, so a file missing from the sdist breaks the wheel too)
   and run `twine check` when twine is installed.
   With uv beside this interpreter (tox deps `build[uv]`) or on PATH, build and the install
   below use it: the same packages, a few times faster; else pip.
2. Check the archives hold the bundled TLC data (duration_core/data/...).
3. Make a fresh virtual environment (venv module) and install ONLY the six wheels, their
   dependencies from the package index.
4. From a temporary folder outside the repository: `duration-train` on the months bundled in
   the installed wheel (--no-download), then `duration-serve` on a free port, wait for /ready,
   POST one ride to /predict, check the answer, stop the server with SIGTERM; then
   `duration-pipeline run` into an embedded registry (level 2), `duration-router` on it
   (level 3): /ready names the champion, /predict and /invocations answer with its version,
   `duration-operate once` (level 4) reads it and fires no trigger;
   then `duration-score` scores green 2021-03 with it (80,349 rides written); last,
   the installed `mlops-assess` places level1_devops/ at level 1 and the repository at 4.

Exits 0 when every step passed, else 1 with the reason (and the server's log, if it ran).
Usage: python scripts/check_dists.py [--keep] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {
    "duration-core": ROOT / "shared",
    "duration-service": ROOT / "level1_devops",
    "duration-training": ROOT / "level2_training",
    "duration-deployment": ROOT / "level3_deployment",
    "duration-operations": ROOT / "level4_operations",
    "mlops-assess": ROOT / "assessment",
}
#: A file each wheel must hold besides its modules (level 3: the report templates).
MARKERS = {
    "duration_service": "duration_service/main.py",
    "duration_training": "duration_training/pipeline.py",
    "duration_deployment": "duration_deployment/templates/ab_report.html.j2",
    "duration_operations": "duration_operations/templates/timeline.html.j2",
    "mlops_assess": "mlops_assess/catalogue.toml",
}
TOKEN = "check-dists-token-0123456789"  # noqa: S105 (a throwaway router of this check)
DATA_FILES = (
    "duration_core/data/green_tripdata_2021-01.parquet",
    "duration_core/data/green_tripdata_2021-02.parquet",
    "duration_core/data/green_tripdata_2021-03.parquet",
    "duration_core/data/taxi_zone_lookup.csv",
)
#: Tool caches that must not ship in an sdist.
CACHES = {"__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", ".mypy_cache", ".tox"}
PATH = os.environ.get("PATH", os.defpath)
RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


class CheckError(Exception):
    """A check failed; the message says which and why."""


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(cmd: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        capture: bool = False) -> str:  # fmt: skip
    """Run a command; raise CheckError with its output if it fails."""
    printable = " ".join(str(c) for c in cmd)
    print(f"    $ {printable}", flush=True)
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        check=False,
    )
    if proc.returncode != 0:
        output = f"\n{proc.stdout}" if capture and proc.stdout else ""
        raise CheckError(f"command failed (exit {proc.returncode}): {printable}{output}")
    return proc.stdout if capture else ""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could leak the repository into the checks."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DURATION_", "PYTHON", "VIRTUAL_ENV", "PROMETHEUS_"))
    }
    env.update(extra)
    return env


def find_uv() -> str | None:
    """uv installed beside this interpreter (deps `build[uv]`) or on PATH: same result, faster."""
    return shutil.which("uv", path=os.pathsep.join([str(Path(sys.executable).parent), PATH]))


def build(dist_dir: Path, uv: str | None) -> None:
    """sdist + wheel (from that sdist) of each project into dist_dir."""
    installer = ["--installer", "uv"] if uv else []
    for name, project in PROJECTS.items():
        step(f"build {name} from {project.relative_to(ROOT)}/")
        run([sys.executable, "-m", "build", *installer, "--outdir", dist_dir, project])


def only(dist_dir: Path, pattern: str) -> Path:
    matches = sorted(dist_dir.glob(pattern))
    if len(matches) != 1:
        raise CheckError(f"expected one {pattern} in {dist_dir}, found {len(matches)}: {matches}")
    return matches[0]


def check_archives(dist_dir: Path) -> list[Path]:
    """The data is in duration-core's wheel and sdist; returns the two wheels."""
    step("check archive contents")
    core_wheel = only(dist_dir, "duration_core-*.whl")
    core_sdist = only(dist_dir, "duration_core-*.tar.gz")

    with zipfile.ZipFile(core_wheel) as zf:
        names = set(zf.namelist())
    missing = [f for f in DATA_FILES if f not in names]
    if missing:
        raise CheckError(f"{core_wheel.name} lacks the bundled data: {missing}")
    wheels = [core_wheel]
    for package, marker in MARKERS.items():
        wheel = only(dist_dir, f"{package}-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            if marker not in zf.namelist():
                raise CheckError(f"{wheel.name} lacks {marker}")
        wheels.append(wheel)

    with tarfile.open(core_sdist) as tf:
        # Members are named <name>-<version>/src/duration_core/data/...
        names = {m.name.split("/", 1)[-1] for m in tf.getmembers()}
    missing = [f for f in DATA_FILES if f"src/{f}" not in names]
    if missing:
        raise CheckError(f"{core_sdist.name} lacks the bundled data: {missing}")
    for sdist in sorted(dist_dir.glob("*.tar.gz")):
        with tarfile.open(sdist) as tf:
            junk = sorted(
                {part for m in tf.getmembers() for part in m.name.split("/") if part in CACHES}
            )
        if junk:
            raise CheckError(
                f"{sdist.name} holds tool caches {junk}: list them in .gitignore "
                "or restrict [tool.hatch.build.targets.sdist] include"
            )
    for path in sorted(dist_dir.iterdir()):
        print(f"    {path.name:55} {path.stat().st_size / 1e6:7.2f} MB")
    return wheels


def twine_check(dist_dir: Path) -> None:
    if importlib.util.find_spec("twine") is None:
        step("twine check skipped (twine is not installed)")
        return
    step("twine check")
    run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist_dir.iterdir())])


def make_venv(env_dir: Path, wheels: list[Path], uv: str | None) -> Path:
    """A fresh venv with the wheels installed; returns its bin (Scripts) folder."""
    step(f"fresh venv {env_dir}, install the {len(wheels)} wheels only")
    venv.EnvBuilder(with_pip=uv is None, clear=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    if uv:
        run([uv, "pip", "install", "--quiet", "--python", python, *wheels], env=clean_env())
    else:
        run([python, "-m", "pip", "install", "--quiet", "--no-cache-dir", *wheels], env=clean_env())
    return bin_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: object | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def check_installed(bin_dir: Path, work: Path, timeout: float) -> None:
    env = clean_env(DURATION_CACHE_DIR=str(work / "cache"))
    python = bin_dir / "python"
    code = (
        "import duration_core, duration_service, duration_training, duration_deployment; "
        "[print(m.__file__) for m in "
        "(duration_core, duration_service, duration_training, duration_deployment)]"
    )
    out = run([python, "-c", code], cwd=work, env=env, capture=True)
    prefix = str(bin_dir.parent.resolve())
    for line in out.split():
        if not str(Path(line).resolve()).startswith(prefix):
            raise CheckError(f"imported from outside the fresh venv: {line}")

    step("duration-train on the months bundled in the installed wheel")
    model = work / "model.zip"
    out = run(
        [bin_dir / "duration-train", "--train", "green:2021-01", "--val", "green:2021-02",
         "--out", model, "--no-download", "--json", "--quiet"],
        cwd=work, env=env, capture=True,
    )  # fmt: skip
    try:
        summary = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise CheckError(f"duration-train --json printed no JSON last line:\n{out}") from exc
    print(f"    trained: {json.dumps(summary)}")
    if not model.is_file():
        raise CheckError(f"duration-train wrote no {model}")

    port = free_port()
    step(f"duration-serve on 127.0.0.1:{port}")
    log_path = work / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(bin_dir / "duration-serve"), "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        body = wait_ready("duration-serve", server, port, timeout)
        print(f"    /ready: {body}")

        status, body = request(port, "POST", "/predict", RIDE)
        if status != 200:
            raise CheckError(f"POST /predict answered {status}: {body}")
        duration = json.loads(body).get("duration")
        if not isinstance(duration, float) or not math.isfinite(duration):
            raise CheckError(f"POST /predict gave no finite float duration: {body}")
        print(f"    POST /predict {json.dumps(RIDE)} -> {body}")
        print(f"prediction: {duration:.4f} min for ride 43 -> 151, 1.5 mi")
    except BaseException:
        stop(server)
        print(f"--- server log ({log_path}) ---\n{log_path.read_text()}--- end of log ---")
        raise
    code = stop(server)
    if code not in (0, -signal.SIGTERM):
        print(f"--- server log ({log_path}) ---\n{log_path.read_text()}--- end of log ---")
        raise CheckError(f"duration-serve exited with {code} on SIGTERM")
    print(f"    server stopped by SIGTERM (exit {code})")
    check_levels_2_and_3(bin_dir, work, env, timeout)


def check_levels_2_and_3(bin_dir: Path, work: Path, env: dict[str, str], timeout: float) -> None:
    """``duration-pipeline run`` into an embedded registry, then ``duration-router`` on it."""
    registry = f"sqlite:///{work / 'mlflow.db'}"
    step("duration-pipeline run (level 2) into an embedded registry")
    out = run(
        [bin_dir / "duration-pipeline", "run", "--train", "green:2021-01", "--val",
         "green:2021-02", "--candidates", "linear", "--tracking-uri", registry, "--json", "-q"],
        cwd=work, env=env, capture=True,
    )  # fmt: skip
    summary = json.loads(out.strip().splitlines()[-1])
    version = str(summary.get("registered_version"))
    if version != "1":
        raise CheckError(f"duration-pipeline registered {version!r}, not version 1: {out}")
    print(f"    registered nyc-taxi-duration v{version}")
    port = free_port()
    step(f"duration-router (level 3) on 127.0.0.1:{port}")
    log_path = work / "router.log"
    with log_path.open("w") as log:
        router = subprocess.Popen(
            [str(bin_dir / "duration-router"), "--tracking-uri", registry, "--port", str(port),
             "--prediction-log", f"sqlite:///{work / 'prediction_log.db'}"],
            cwd=work, env={**env, "DURATION_ROUTER_TOKEN": TOKEN}, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        body = wait_ready("duration-router", router, port, timeout)
        if json.loads(body).get("variants") != {"champion": "1"}:
            raise CheckError(f"the router did not deploy the champion v1: {body}")
        print(f"    /ready: {body}")
        status, body = request(port, "POST", "/predict", RIDE)
        answer = json.loads(body) if status == 200 else {}
        if (answer.get("variant"), answer.get("model_version")) != ("champion", "1"):
            raise CheckError(f"router POST /predict answered {status}: {body}")
        print(f"    POST /predict -> {body}")
        split = {"columns": list(RIDE), "data": [list(RIDE.values())]}
        status, body = request(port, "POST", "/invocations", {"dataframe_split": split})
        if status != 200 or json.loads(body).get("model_versions") != ["1"]:
            raise CheckError(f"router POST /invocations answered {status}: {body}")
        print(f"    POST /invocations -> {body}")
        step("duration-operate once (level 4) against the router")
        out = run(
            [bin_dir / "duration-operate", "--router-url", f"http://127.0.0.1:{port}", "--json",
             "--workdir", work / "operations", "once", "--no-prefect"],
            cwd=work, env={**env, "DURATION_ROUTER_TOKEN": TOKEN}, capture=True,
        )  # fmt: skip
        # stderr is in the output too (MLflow's download progress bar comes before the JSON)
        passed, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
        fired = [t["trigger"] for t in passed["triggers"] if t["fired"]]
        if passed["champion"] != "1" or fired:
            raise CheckError(
                f"duration-operate once saw champion {passed['champion']}, fired {fired}"
            )
        print(f"    champion v{passed['champion']}, no trigger fired (no traffic yet)")
    except BaseException:
        stop(router)
        print(f"--- router log ({log_path}) ---\n{log_path.read_text()}--- end of log ---")
        raise
    code = stop(router)
    if code not in (0, -signal.SIGTERM):
        raise CheckError(f"duration-router exited with {code} on SIGTERM")
    print(f"    router stopped by SIGTERM (exit {code})")
    step("duration-score (level 3, batch) of green 2021-03 with the champion")
    out = run(
        [bin_dir / "duration-score", "--model", "models:/nyc-taxi-duration@champion", "--month",
         "green:2021-03", "--out", work / "scored", "--tracking-uri", registry, "--json"],
        cwd=work, env=env, capture=True,
    )  # fmt: skip
    scored = json.loads(out.strip().splitlines()[-1])
    if scored.get("rows_written") != 80_349:
        raise CheckError(f"duration-score wrote {scored.get('rows_written')} rides, not 80,349")
    print(f"    {scored['rows_written']:,} rides -> {scored['months'][0]['path']}")


def check_assessor(bin_dir: Path, work: Path) -> None:
    """The installed mlops-assess places level 1's folder at 1 and the repository at 4."""
    for folder, expected in ((ROOT / "level1_devops", 1), (ROOT, 4)):
        step(f"mlops-assess {folder} (expected level {expected})")
        out = run([bin_dir / "mlops-assess", folder, "--format", "json"], cwd=work, capture=True)
        level = json.loads(out)["level"]
        if level != expected:
            raise CheckError(f"mlops-assess placed {folder} at level {level}, not {expected}")
        print(f"    level {level}")


def wait_ready(name: str, server: subprocess.Popen[bytes], port: int, timeout: float) -> str:
    """Poll ``GET /ready`` until it answers 200; return its body.

    Raises:
        CheckError: The process exited first, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    status, body = 0, "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckError(f"{name} exited with {server.returncode} before /ready")
        with contextlib.suppress(OSError):
            status, body = request(port, "GET", "/ready")
            if status == 200:
                return body
        time.sleep(0.25)
    raise CheckError(f"{name} /ready not 200 within {timeout:g} s (last: {status} {body})")


def stop(server: subprocess.Popen[bytes]) -> int:
    if server.poll() is None:
        server.terminate()  # SIGTERM on POSIX
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return server.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for /ready (default 60)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="check-dists-")).resolve()
    if tmp.is_relative_to(ROOT):
        raise SystemExit(f"the temporary folder {tmp} lies inside the repository")
    try:
        dist_dir = tmp / "dist"
        uv = find_uv()
        build(dist_dir, uv)
        wheels = check_archives(dist_dir)
        twine_check(dist_dir)
        bin_dir = make_venv(tmp / "venv", wheels, uv)
        work = tmp / "work"
        work.mkdir()
        check_installed(bin_dir, work, args.timeout)
        check_assessor(bin_dir, work)
    except CheckError as exc:
        print(f"check_dists: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - start
    print(f"check_dists: OK, {len(PROJECTS)} distributions built, installed and served in "
          f"{elapsed:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
