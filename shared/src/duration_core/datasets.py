"""Where a month of TLC trip records comes from: the bundled sample, a cache, or the TLC.

A month is named by a :class:`TripMonth` (``green:2021-01`` on the command line). It resolves,
in order, to the copy bundled with this package, then to a cache folder, then to a download
from the TLC's public trip-data address. Downloads go to a temporary file in the cache folder
and are renamed into place only once complete and recognised as parquet, so an interrupted
transfer never leaves a partial month behind.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from duration_core._io import atomic_write
from duration_core.errors import (
    DatasetSpecError,
    DownloadError,
    TripDataError,
    TripFileNotFoundError,
)

logger = logging.getLogger(__name__)

#: Public address of the monthly files (TLC trip record data page, "Trip Record Data" links).
TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"

#: The TLC's services, as spelt in the monthly file names.
SERVICES = ("yellow", "green", "fhv", "fhvhv")

_SPEC = re.compile(r"^(?P<service>[A-Za-z]+):(?P<year>\d{4})-(?P<month>\d{1,2})$")
_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True, order=True)
class TripMonth:
    """One monthly TLC trip-record file, e.g. green taxis in January 2021.

    Attributes:
        service: One of :data:`SERVICES`.
        year: Four-digit year.
        month: 1-12.
    """

    service: str
    year: int
    month: int

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise DatasetSpecError(
                f"unknown TLC service {self.service!r}: expected one of {', '.join(SERVICES)}"
            )
        if not 1 <= self.month <= 12:
            raise DatasetSpecError(f"month must be 1-12, got {self.month} in {self.service}")
        if not 2009 <= self.year <= 2100:
            raise DatasetSpecError(f"year {self.year} is outside the TLC records (2009 on)")

    @classmethod
    def parse(cls, spec: str) -> TripMonth:
        """Parse ``SERVICE:YYYY-MM`` (e.g. ``green:2021-01``).

        Raises:
            DatasetSpecError: The text is not of that form, or names an unknown service or month.
        """
        match = _SPEC.match(spec.strip())
        if match is None:
            raise DatasetSpecError(
                f"{spec!r} is not a month spec: expected SERVICE:YYYY-MM such as green:2021-01"
            )
        return cls(match["service"].lower(), int(match["year"]), int(match["month"]))

    @property
    def filename(self) -> str:
        """The TLC's file name, e.g. ``green_tripdata_2021-01.parquet``."""
        return f"{self.service}_tripdata_{self.year:04d}-{self.month:02d}.parquet"

    def __str__(self) -> str:
        return f"{self.service}:{self.year:04d}-{self.month:02d}"


def is_month_spec(text: str) -> bool:
    """True when ``text`` looks like ``SERVICE:YYYY-MM`` rather than a file path."""
    return _SPEC.match(text.strip()) is not None


def parse_source(source: str | os.PathLike[str] | TripMonth) -> Path | TripMonth:
    """Turn a command-line source into a :class:`TripMonth` or a file :class:`~pathlib.Path`.

    Raises:
        DatasetSpecError: ``source`` has the month form but an unknown service or month.
    """
    if isinstance(source, TripMonth):
        return source
    if isinstance(source, str) and is_month_spec(source):
        return TripMonth.parse(source)
    return Path(source)


def bundled_dir() -> Path:
    """Folder of the real TLC files shipped with the package (see its README.md)."""
    return Path(str(resources.files("duration_core") / "data"))


def bundled_path(month: TripMonth) -> Path | None:
    """Path of the bundled copy of ``month``, or None when the package does not ship it."""
    path = bundled_dir() / month.filename
    return path if path.is_file() else None


def default_cache_dir() -> Path:
    """``$DURATION_CACHE_DIR``, else ``$XDG_CACHE_HOME/duration-core``, else ``~/.cache/...``."""
    if env := os.environ.get("DURATION_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "duration-core"


def default_base_url() -> str:
    """``$DURATION_TLC_BASE_URL`` (a mirror, or a test server), else :data:`TLC_BASE_URL`."""
    return os.environ.get("DURATION_TLC_BASE_URL", TLC_BASE_URL).rstrip("/")


def resolve_month(
    month: TripMonth,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    base_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Local path of ``month``: bundled copy, else cached copy, else a fresh download.

    Args:
        month: The month to find.
        cache_dir: Cache folder; default :func:`default_cache_dir`.
        download: Whether a month found neither bundled nor cached may be downloaded.
        base_url: Address the TLC files are served from; default :func:`default_base_url`.
        progress: Show a progress bar on stderr while downloading.

    Raises:
        TripFileNotFoundError: Not bundled, not cached, and ``download`` is False.
        DownloadError: The download failed; nothing is left in the cache.
    """
    if (bundled := bundled_path(month)) is not None:
        return bundled
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / month.filename
    if cached.is_file():
        return cached
    if cached.exists():
        raise TripDataError(f"{cached} is in the way of {month}: it exists but is not a file")
    if not download:
        raise TripFileNotFoundError(
            f"{month} is not bundled and not in the cache {cache}; allow downloads or put "
            f"{month.filename} there"
        )
    return download_month(month, cache, base_url=base_url, progress=progress)


def download_month(
    month: TripMonth,
    cache_dir: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``month`` into ``cache_dir`` and return the file's path.

    The bytes go to a hidden temporary file in ``cache_dir``; it is renamed to
    ``month.filename`` only when the whole body has arrived (as many bytes as the server's
    ``Content-Length``) and starts and ends with the parquet magic ``PAR1``.

    Raises:
        DownloadError: HTTP error (e.g. 404 for a month the TLC has not published), connection
            failure, interrupted transfer or a body that is not parquet. No partial file remains.
    """
    url = f"{base_url.rstrip('/') if base_url else default_base_url()}/{month.filename}"
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"refusing to download {url}: only http(s) addresses are allowed")
    target = Path(cache_dir) / month.filename
    logger.info("downloading %s from %s", month, url)
    request = urllib.request.Request(url, headers={"User-Agent": "duration-core"})  # noqa: S310
    try:
        with atomic_write(target, suffix=".part") as (out, tmp):
            received, expected = _stream(request, out, url, progress=progress, timeout=timeout)
            out.flush()
            if expected is not None and received != expected:
                raise DownloadError(
                    f"download of {url} was interrupted: got {received:,} of {expected:,} bytes"
                )
            if not _is_parquet(tmp):
                raise DownloadError(f"{url} did not return a parquet file ({received:,} bytes)")
    except OSError as exc:
        raise DownloadError(
            f"cannot save {month} in the cache folder {target.parent}: {exc.strerror or exc}"
        ) from None
    logger.info("saved %s (%s bytes) to %s", month, f"{received:,}", target)
    return target


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) addresses only (urllib would also follow ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # the stdlib's signature
        if not newurl.lower().startswith(("http://", "https://")):
            raise DownloadError(f"{req.full_url} redirected to {newurl}: only http(s) is allowed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def _stream(
    request: urllib.request.Request,
    out: BinaryIO,
    url: str,
    *,
    progress: bool,
    timeout: float,
) -> tuple[int, int | None]:
    """Copy the response body to ``out``; return (bytes received, Content-Length or None)."""
    received = 0
    try:
        with _opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                disable=not progress,
                file=sys.stderr,
                leave=False,
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise DownloadError(
            f"download of {url} was interrupted after {received + len(exc.partial):,} bytes"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {url}: {reason}") from None
    return received, expected


def _is_parquet(path: Path) -> bool:
    """True when the file has the parquet magic at both ends and a readable footer."""
    size = path.stat().st_size
    if size < 12:
        return False
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(-4, os.SEEK_END)
        tail = handle.read(4)
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        return False
    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError):
        return False
    return True


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
