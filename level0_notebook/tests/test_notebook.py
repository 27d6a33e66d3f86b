"""Execute the level-0 notebook and check the numbers it prints.

The notebook is executed once per test session (module-scoped fixture) with its own
folder as working directory, so its relative data paths resolve inside the repository.
The executed copy lives only in memory; the notebook on disk is never rewritten.
The one side effect is ``level0_notebook/models/lin_reg.bin`` (gitignored), which the
notebook writes on purpose and which is checked below.
"""

from __future__ import annotations

import pickle
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NB_DIR = Path(__file__).resolve().parents[1]
NB_PATH = NB_DIR / "duration-prediction.ipynb"
MODEL_PATH = NB_DIR / "models" / "lin_reg.bin"

# DataTalksClub mlops-zoomcamp, 02-experiment-tracking/duration-prediction.ipynb
COURSE_VAL_RMSE = 7.758715210382775
EXPECTED_TRAIN_ROWS = 73908
EXPECTED_VAL_ROWS = 61921


@pytest.fixture(scope="module")
def executed():
    """Run a copy of the notebook; return (executed notebook, start timestamp)."""
    nb = nbformat.read(NB_PATH, as_version=4)
    started = time.time()
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NB_DIR)}},
    )
    client.execute()
    return nb, started


def _tagged_stdout(nb, tag: str) -> str:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected exactly one cell tagged {tag!r}, found {len(cells)}"
    return "".join(
        out.get("text", "")
        for out in cells[0].get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )


def _validation_rmse(nb) -> float:
    lines = _tagged_stdout(nb, "validation-rmse").splitlines()
    assert len(lines) == 1, f"validation-rmse cell must print one line, got {lines!r}"
    match = re.fullmatch(r"validation RMSE: (\S+)", lines[0])
    assert match, f"unexpected line: {lines[0]!r}"
    return float(match.group(1))


def test_validation_rmse_matches_course(executed):
    nb, _ = executed
    assert _validation_rmse(nb) == pytest.approx(COURSE_VAL_RMSE, abs=1e-3)


def test_row_counts_after_filter(executed):
    nb, _ = executed
    out = _tagged_stdout(nb, "row-counts")
    assert re.search(rf"^train rows: {EXPECTED_TRAIN_ROWS}$", out, re.M), out
    assert re.search(rf"^val rows: {EXPECTED_VAL_ROWS}$", out, re.M), out


def test_model_file_written(executed):
    _, started = executed
    assert MODEL_PATH.is_file(), f"{MODEL_PATH} was not written"
    # written by this run, not left over from an earlier one (1 s slack for coarse mtimes)
    assert MODEL_PATH.stat().st_mtime >= started - 1

    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression

    with MODEL_PATH.open("rb") as f_in:
        obj = pickle.load(f_in)
    assert isinstance(obj, tuple)
    assert len(obj) == 2
    dv, lr = obj
    assert isinstance(dv, DictVectorizer)
    assert isinstance(lr, LinearRegression)
    assert "trip_distance" in dv.feature_names_


def test_validation_rmse_matches_core_library(executed):
    """The level-1 refactor into duration_core must not change the number."""
    duration_core = pytest.importorskip("duration_core")
    nb, _ = executed
    result = duration_core.train_model("green:2021-01", "green:2021-02", model="linear")
    assert _validation_rmse(nb) == pytest.approx(result.val_metrics.rmse, rel=1e-6)


def test_notebook_is_stored_without_outputs():
    """Outputs are stripped in git (nbstripout pre-commit hook)."""
    nb = nbformat.read(NB_PATH, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], "notebook saved with outputs"
            assert cell.get("execution_count") is None, "notebook saved with execution counts"
