"""Load an HTML page in a headless Chromium (or Chrome) and read back what it made of it.

The page is served byte for byte by a throwaway ``http.server`` on 127.0.0.1 (a free port),
inside an ``<iframe>`` of a small harness page from the same origin. After the harness's
``load`` event (which waits for the frame and its images), a harness script reads the frame's
document: the text of every element with an id, and for every ``<img>`` its ``data-plot``,
``alt``, ``complete`` and ``naturalWidth`` (0 when the image did not decode). It writes that
as JSON into the harness's DOM, which ``chromium --dump-dom`` prints. The page under test
thus keeps its own Content-Security-Policy (no scripts): nothing is injected into it.

Every request that reaches the server is recorded, so a test can also check that the page
asked for nothing but itself.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ladder_testing.programs import find_browser

#: Flags for a quiet, offline, throwaway browser (no sandbox: CI containers run as root).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=10000",
)

_HARNESS = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>harness</title></head>
<body>
<iframe id="page" src="/page.html" width="1200" height="900"></iframe>
<pre id="result"></pre>
<script>
window.addEventListener("load", () => {
  const doc = document.getElementById("page").contentDocument;
  const images = Array.from(doc.images).map((img) => ({
    plot: img.dataset.plot === undefined ? null : img.dataset.plot,
    alt: img.getAttribute("alt"),
    complete: img.complete,
    naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight,
  }));
  const texts = {};
  for (const element of doc.querySelectorAll("[id]")) {
    texts[element.id] = element.textContent.trim();
  }
  const result = {
    title: doc.title,
    images: images,
    imagesLoaded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
    texts: texts,
    dom: doc.documentElement.outerHTML,
  };
  document.getElementById("result").textContent = JSON.stringify(result);
  document.body.dataset.done = "true";
});
</script>
</body></html>
"""
_RESULT = re.compile(r'<pre id="result">(.*?)</pre>', re.DOTALL)


@dataclass(frozen=True)
class LoadedPage:
    """What Chromium made of a page.

    Attributes:
        title: ``document.title``.
        images: One dict per ``<img>``: ``plot`` (its ``data-plot``), ``alt``, ``complete``,
            ``naturalWidth``, ``naturalHeight`` (pixels; 0 when it did not decode).
        images_loaded: Images with ``naturalWidth > 0``.
        texts: ``textContent`` (stripped) of every element with an id, by id.
        dom: The page's DOM after loading, serialised.
        requests: Paths the page server was asked for, in order.
    """

    title: str
    images: list[dict[str, Any]]
    images_loaded: int
    texts: dict[str, str]
    dom: str
    requests: list[str]

    @property
    def plots(self) -> list[str]:
        """``data-plot`` names of the images that have one."""
        return [i["plot"] for i in self.images if i["plot"] is not None]


def load_page(page: str, *, timeout: float = 90.0) -> LoadedPage:
    """Serve ``page`` on 127.0.0.1, load it in headless Chromium and report what it shows.

    Args:
        page: The HTML document, as text (served as UTF-8).
        timeout: Seconds Chromium may take before the test fails.

    Raises:
        pytest.skip.Exception: No browser is found (outside CI: see
            :func:`~ladder_testing.programs.find_browser`).
        pytest.fail.Exception: The browser is missing under CI, times out, exits with an error
            or prints no harness result.
    """
    chromium = find_browser()
    requests: list[str] = []
    body = {"/": _HARNESS.encode(), "/page.html": page.encode("utf-8")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            content = body.get(self.path)
            if content is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"Chromium did not dump {url} within {timeout:.0f} s", pytrace=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    match = _RESULT.search(done.stdout)
    if done.returncode != 0 or match is None or not match.group(1).strip():
        pytest.fail(
            f"Chromium exited {done.returncode} without a harness result for {url}\n"
            f"stdout (end): {done.stdout[-2000:]}\nstderr (end): {done.stderr[-2000:]}",
            pytrace=False,
        )
    result = json.loads(html.unescape(match.group(1)))
    return LoadedPage(
        title=result["title"],
        images=result["images"],
        images_loaded=int(result["imagesLoaded"]),
        texts=result["texts"],
        dom=result["dom"],
        requests=list(requests),
    )
