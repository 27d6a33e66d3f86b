"""The prediction log's write-ahead journal: rows recorded by a process that is killed with
SIGKILL before they reach the database are written, exactly once, when the log is opened
again; the journal folder serves one router and one database; a torn last line is skipped;
a row that cannot be journalled is not answered (503). On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duration_deployment.journal import Journal, JournalError
from duration_deployment.main import create_app
from duration_deployment.prediction_log import PredictionLog
from ladder_testing.router import RIDE, router_settings

#: Records ``count`` rows (``flushed`` of them written to the database first), says so, then
#: waits to be killed. After the flush every insert hangs (a database that stalls), so the
#: rest are only in the journal when the process dies.
RECORDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from duration_deployment.prediction_log import PredictionLog
    url, journal = sys.argv[1], Path(sys.argv[2])
    count, flushed = int(sys.argv[3]), int(sys.argv[4])
    log = PredictionLog(url, journal_dir=journal, batch_rows=10_000, flush_seconds=0.01).open()

    def stall(flushed):
        if flushed == 0:
            log.writer._insert = lambda items: time.sleep(3600)

    stall(flushed)
    for i in range(count):
        log.record({
            "at": 1_614_585_600.0 + i * 0.001, "request_id": f"req-{i}", "ride_id": f"r-{i}",
            "variant": "champion", "model_version": "1", "shadow": False, "forced": False,
            "pu_location_id": 74, "do_location_id": 41 + i % 7, "trip_distance": 1.25 + i,
            "prediction": 6.5 + i / 100, "latency_ms": 1.0, "error": None,
        })
        if i + 1 == flushed:
            assert log.flush(timeout=60)
            stall(0)
    print("recorded", flush=True)
    time.sleep(600)
    """
)


def record_then_kill(url: str, journal: Path, count: int, flushed: int) -> None:
    """Run :data:`RECORDER` in another process and ``kill -9`` it once it has recorded."""
    process = subprocess.Popen(
        [sys.executable, "-c", RECORDER, url, str(journal), str(count), str(flushed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "recorded"
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -9


def test_rows_of_a_killed_process_are_written_once_at_the_next_open(
    log_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    record_then_kill(log_url, journal, count=1_000, flushed=400)
    log = PredictionLog(log_url, journal_dir=journal).open()
    try:
        assert log.writer.replayed == 600  # the 400 flushed ones were in the database already
        frame = log.frame()
    finally:
        log.close()
    assert len(frame) == 1_000
    assert list(frame["ride_id"]) == [f"r-{i}" for i in range(1_000)]
    assert list(frame["trip_distance"]) == pytest.approx([1.25 + i for i in range(1_000)])
    assert list(frame["prediction"]) == pytest.approx([6.5 + i / 100 for i in range(1_000)])
    assert frame["at"].iloc[999] == pytest.approx(1_614_585_600.999, abs=1e-6)
    assert not list(journal.glob("segment-*"))  # a clean close leaves nothing to replay
    again = PredictionLog(log_url, journal_dir=journal).open()
    try:
        assert (again.writer.replayed, again.count()) == (0, 1_000)
    finally:
        again.close()


def test_a_second_crash_after_a_replay_adds_only_its_own_rows(log_url: str, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    record_then_kill(log_url, journal, count=300, flushed=0)
    record_then_kill(log_url, journal, count=200, flushed=50)  # replays the 300 first
    log = PredictionLog(log_url, journal_dir=journal).open()
    try:
        assert log.writer.replayed == 150
        assert log.count() == 500
    finally:
        log.close()


def test_one_router_per_journal_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    first = PredictionLog(url, journal_dir=tmp_path / "journal").open()
    try:
        with pytest.raises(JournalError, match="in use by another duration-router"):
            PredictionLog(
                f"sqlite:///{tmp_path / 'other.db'}", journal_dir=tmp_path / "journal"
            ).open()
    finally:
        first.close()


def test_rows_journalled_for_another_database_are_not_replayed_into_this_one(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal"
    first, other = f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    record_then_kill(first, journal, count=20, flushed=0)
    with pytest.raises(JournalError) as refused:
        PredictionLog(other, journal_dir=journal).open()
    message = str(refused.value)
    assert "holds 20 prediction rows (seq 1-20)" in message
    assert str(tmp_path / "first.db") in message
    assert str(tmp_path / "other.db") in message
    log = PredictionLog(first, journal_dir=journal).open()  # as the message says: written
    try:
        assert log.count() == 20
    finally:
        log.close()


def test_a_torn_last_entry_is_skipped_and_the_rows_before_it_written(tmp_path: Path) -> None:
    journal, url = tmp_path / "journal", f"sqlite:///{tmp_path / 'log.db'}"
    record_then_kill(url, journal, count=10, flushed=0)
    (segment,) = journal.glob("segment-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b'[11, {"at": 1614585600.5, "request_id": "tor')  # a power cut mid-write
    log = PredictionLog(url, journal_dir=journal).open()
    try:
        assert (log.writer.replayed, log.count()) == (10, 10)
    finally:
        log.close()


def test_a_corrupt_journal_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    journal, url = tmp_path / "journal", f"sqlite:///{tmp_path / 'log.db'}"
    record_then_kill(url, journal, count=5, flushed=0)
    (segment,) = journal.glob("segment-*.jsonl")
    lines = segment.read_bytes().splitlines()
    segment.write_bytes(b"\n".join([lines[0], b"garbage", *lines[1:]]) + b"\n")
    with pytest.raises(JournalError, match=r"segment-000000000001\.jsonl, line 2: not a journal"):
        PredictionLog(url, journal_dir=journal).open()


def test_a_prediction_that_cannot_be_journalled_is_not_answered(
    tmp_path: Path, registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(router_settings(tmp_path, registry_uri))
    with TestClient(app) as client:
        assert client.post("/predict", json=RIDE).status_code == 200
        journal = app.state.log.writer.journal

        def disk_full(*_args: object) -> None:
            raise JournalError(f"the journal {journal.directory}: No space left on device")

        monkeypatch.setattr(journal, "append", disk_full)
        answer = client.post("/predict", json=RIDE)
        assert answer.status_code == 503
        assert answer.json()["detail"] == (
            f"the prediction could not be recorded: the journal {journal.directory}: "
            "No space left on device"
        )
        monkeypatch.undo()
        assert client.post("/predict", json=RIDE).status_code == 200
        assert app.state.log.flush()
        assert app.state.log.count() == 2
    assert json.loads((journal.directory / "journal.json").read_text())["database"].endswith(
        "prediction_log.db"
    )


def journal_row(i: int) -> dict[str, object]:
    return {"ride_id": f"r-{i}", "prediction": 6.5, "padding": "x" * 200}


def test_a_write_cut_short_by_a_full_disk_is_cut_off_and_the_next_one_starts_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal")
    journal.open("db")
    journal.start(0)
    queued: list[object] = []
    journal.append([journal_row(1)], queued.append)
    real_write = os.write

    def half_then_full(fd: int, data: memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("duration_deployment.journal.os.write", half_then_full)
    with pytest.raises(JournalError, match="No space left on device"):
        journal.append([journal_row(2), journal_row(3)], queued.append)
    monkeypatch.undo()
    journal.append([journal_row(4)], queued.append)
    journal.close()
    assert [seq for seq, _ in queued] == [1, 2]  # the refused rows were never queued
    again = Journal(tmp_path / "journal")
    entries = again.open("db")
    again.close()
    assert [(e.seq, e.row["ride_id"]) for e in entries] == [(1, "r-1"), (2, "r-4")]


def test_a_segment_that_cannot_be_created_keeps_the_current_one_and_no_stale_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal", segment_bytes=1_000)
    journal.open("db")
    journal.start(0)
    real_open = os.open

    def no_new_segment(path: object, *args: object) -> int:
        if "segment-" in str(path):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("duration_deployment.journal.os.open", no_new_segment)
    queued: list[object] = []
    for i in range(1, 11):  # 2.3 kB: past the segment size
        journal.append([journal_row(i)], queued.append)
    bystander = tmp_path / "bystander.txt"
    with bystander.open("w") as handle:  # takes the lowest free descriptor
        handle.write("mine\n")
        journal.append([journal_row(11)], queued.append)
    monkeypatch.undo()
    assert bystander.read_text() == "mine\n"
    journal.append([journal_row(12)], queued.append)  # the rotation succeeds now
    journal.close()
    again = Journal(tmp_path / "journal")
    entries = again.open("db")
    again.close()
    assert [e.seq for e in entries] == list(range(1, 13))
    assert len(list((tmp_path / "journal").glob("segment-*.jsonl"))) == 2


def test_a_segment_whose_rows_are_all_written_is_replaced(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.open("db")
    journal.start(0)
    for i in range(1, 401):  # about 90 kB
        journal.append([journal_row(i)], lambda item: None)
    (segment,) = (tmp_path / "journal").glob("segment-*.jsonl")
    journal.written(399)
    assert segment.stat().st_size > 64 << 10  # one row is still to be written: kept
    journal.written(400)
    assert not segment.exists()
    (fresh,) = (tmp_path / "journal").glob("segment-*.jsonl")
    assert (fresh.name, fresh.stat().st_size) == ("segment-000000000401.jsonl", 0)
    journal.append([journal_row(401)], lambda item: None)
    journal.close()
    again = Journal(tmp_path / "journal")
    assert [e.seq for e in again.open("db")] == [401]
    again.close()
