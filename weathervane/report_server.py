"""HTTP for the HTML reports, so a link in the Dagster UI opens in the browser (file:// links are refused there).

`report_url(path)` is the address of a report file under the reports folder; `serve_reports()` serves that folder
read-only on loopback (started by `weathervane ui`).
"""
from __future__ import annotations

import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from weathervane import config

DEFAULT_PORT = 3002


def reports_base_url() -> str:
    return os.environ.get("WEATHERVANE_REPORTS_URL", f"http://localhost:{DEFAULT_PORT}").rstrip("/")


def report_url(path: Path | str, reports_dir: Path | str | None = None) -> str:
    """The HTTP address of a report; a path outside the reports folder keeps its file:// URI."""
    path = Path(path).resolve()
    root = Path(reports_dir or config.reports_dir()).resolve()
    try:
        rel = path.relative_to(root)
    except ValueError:
        return path.as_uri()
    return f"{reports_base_url()}/{quote(rel.as_posix())}"


class _ReportHandler(SimpleHTTPRequestHandler):
    def list_directory(self, path):  # reports are linked one by one; no folder listings
        self.send_error(404, "Not found")
        return None

    def do_GET(self):  # noqa: N802
        if self.path == "/favicon.ico":  # browsers ask for one; a report page has none
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format, *args):  # quiet: the UI's own server logs are the ones to read
        pass


def make_report_server(host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                       reports_dir: Path | str | None = None) -> ThreadingHTTPServer:
    root = Path(reports_dir or config.reports_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_ReportHandler, directory=str(root))
    return ThreadingHTTPServer((host, port), handler)


def serve_reports(host: str = "127.0.0.1", port: int = DEFAULT_PORT, reports_dir: Path | str | None = None) -> None:
    make_report_server(host, port, reports_dir).serve_forever()
