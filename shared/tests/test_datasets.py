"""Month specs, the bundled sample, the cache, and downloads from a real local HTTP server."""

from __future__ import annotations

import http.server
import socket
from pathlib import Path
from typing import ClassVar

import pytest

from duration_core import DatasetSpecError, DownloadError, TripFileNotFoundError, TripMonth
from duration_core.datasets import (
    bundled_dir,
    default_cache_dir,
    file_sha256,
    parse_source,
    resolve_month,
)
from duration_core.trips import load_trips

BUNDLED_SHA256 = {  # from the TLC data README (shared/src/duration_core/data/README.md)
    "green_tripdata_2021-01.parquet": (
        "b8e2c9496c5eada0f10adbd88f98d91721ec6fe2787a2b355cf0ccfa9678ee7b"
    ),
    "green_tripdata_2021-02.parquet": (
        "fd43c7afa2002716c8afadfd57665ab9c9ad99be419570a9b0a08de15cbeb64e"
    ),
    "green_tripdata_2021-03.parquet": (
        "78847a2e0ccb58202eef3337903e696317656815f50423733ad3099dabc58a9d"
    ),
    "green_tripdata_2023-03.parquet": (
        "69ab2c3b515ad1dd686a8ac3375370b8a44b003d95d340655d94828db0681d9d"
    ),
    "taxi_zone_lookup.csv": ("598bfdd5170dcd8b9cfb5ec7f8dc283552e1b79cf0bcf3b7a0463fec1bfef115"),
}


def test_bundled_files_are_the_official_bytes() -> None:
    for name, digest in BUNDLED_SHA256.items():
        assert file_sha256(bundled_dir() / name) == digest, name


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("green:2021-01", TripMonth("green", 2021, 1)),
        ("yellow:2023-3", TripMonth("yellow", 2023, 3)),
        ("FHV:2021-12", TripMonth("fhv", 2021, 12)),
    ],
)
def test_month_specs_parse(spec: str, expected: TripMonth) -> None:
    assert TripMonth.parse(spec) == expected
    assert parse_source(spec) == expected


def test_month_file_name_and_text() -> None:
    month = TripMonth("green", 2021, 1)
    assert month.filename == "green_tripdata_2021-01.parquet"
    assert str(month) == "green:2021-01"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("green:2021-13", "month must be 1-12"),
        ("blue:2021-01", "unknown TLC service 'blue'"),
        ("green:1999-01", "outside the TLC records"),
    ],
)
def test_bad_month_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(DatasetSpecError, match=message):
        parse_source(spec)


def test_a_path_is_a_path() -> None:
    assert parse_source("data/green_tripdata_2021-01.parquet") == Path(
        "data/green_tripdata_2021-01.parquet"
    )


def test_bundled_month_wins_over_cache_and_network(tmp_path: Path) -> None:
    path = resolve_month(
        TripMonth("green", 2021, 1), cache_dir=tmp_path, base_url="http://127.0.0.1:9"
    )
    assert path.parent == bundled_dir()


def test_cache_dir_from_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DURATION_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path


def test_no_download_when_forbidden(tmp_path: Path) -> None:
    with pytest.raises(TripFileNotFoundError, match="green:2020-01 is not bundled"):
        resolve_month(TripMonth("green", 2020, 1), cache_dir=tmp_path, download=False)


# --- downloads against a real HTTP server on 127.0.0.1 ----------------------------------------


class TlcHandler(http.server.BaseHTTPRequestHandler):
    """Serves the bundled January file under any green 2020 month name.

    ``/trip-data/green_tripdata_2020-01.parquet``: the whole file.
    ``/trip-data/green_tripdata_2020-02.parquet``: Content-Length of the whole file, then the
    connection closes after half of it (an interrupted transfer).
    ``/trip-data/green_tripdata_2020-03.parquet``: an HTML page with status 200 (a captive portal).
    anything else: 404.
    """

    body: ClassVar[bytes] = b""
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name == "green_tripdata_2020-01.parquet":
            self._send(200, self.body)
        elif name == "green_tripdata_2020-02.parquet":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body[: len(self.body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif name == "green_tripdata_2020-03.parquet":
            self._send(200, b"<html>please log in</html>")
        else:
            self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def tlc_server(jan_path: Path, loopback_server) -> str:
    TlcHandler.body = jan_path.read_bytes()
    TlcHandler.requests = []
    return loopback_server(TlcHandler) + "/trip-data"


def test_download_lands_in_the_cache_and_is_reused(
    tlc_server: str, tmp_path: Path, jan_path: Path
) -> None:
    month = TripMonth("green", 2020, 1)
    path = resolve_month(month, cache_dir=tmp_path, base_url=tlc_server, progress=False)
    assert path == tmp_path / "green_tripdata_2020-01.parquet"
    assert file_sha256(path) == file_sha256(jan_path)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left over
    again = resolve_month(month, cache_dir=tmp_path, base_url=tlc_server, progress=False)
    assert again == path
    assert TlcHandler.requests == ["/trip-data/green_tripdata_2020-01.parquet"]  # one GET only


def test_load_trips_downloads_through_the_environment_base_url(
    tlc_server: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DURATION_TLC_BASE_URL", tlc_server)
    data = load_trips("green:2020-01", cache_dir=tmp_path)
    assert data.report.rows_read == 76_518


def test_404_is_a_download_error_and_leaves_nothing(tlc_server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"green_tripdata_2020-04.parquet answered HTTP 404"):
        resolve_month(
            TripMonth("green", 2020, 4), cache_dir=tmp_path, base_url=tlc_server, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_leaves_no_partial_file(tlc_server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="interrupted"):
        resolve_month(
            TripMonth("green", 2020, 2), cache_dir=tmp_path, base_url=tlc_server, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_a_body_that_is_not_parquet_is_refused(tlc_server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="did not return a parquet file"):
        resolve_month(
            TripMonth("green", 2020, 3), cache_dir=tmp_path, base_url=tlc_server, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_a_download_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=f"could not download http://127.0.0.1:{port}/"):
        resolve_month(
            TripMonth("green", 2020, 1),
            cache_dir=tmp_path,
            base_url=f"http://127.0.0.1:{port}",
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []
