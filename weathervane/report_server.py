"""HTTP for the HTML reports, so a link in the Dagster UI opens in the browser (file:// links are refused there).

`report_url(path)` is the address of a report file under the reports folder; `serve_reports()` serves that folder
read-only on loopback (started by `weathervane ui`).

Only reports are served: plain `.html` files below the folder, reached through plain folders. A symbolic link
anywhere on the way, a hidden name, any other kind of file or a path that cannot name a file is answered 404 (400
for bytes no path holds). No folder is listed as it is: `/` and `/<tenant>/` answer a page generated here that
names the tenants (folders named as tenant ids) and each tenant's reports (plain `.html` files), each name escaped. Reports are self-contained (figures are inline images), so every
answer carries a Content-Security-Policy that lets a page run no script and fetch nothing, and `nosniff`.
"""
from __future__ import annotations

import os
import stat
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from weathervane import config

DEFAULT_PORT = 3002
REPORT_SUFFIXES = (".html",)
# No script, no fetch, no form, no framing by other sites: a report is text, tables and data: images.
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'self'")
MAX_REPORT_BYTES = 64 << 20


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


class BadPath(ValueError):
    """A request path that cannot name a report."""

    def __init__(self, status: HTTPStatus):
        super().__init__(status.phrase)
        self.status = status


def resolve_report(root: Path, request_path: str) -> Path:
    """The report file a request path names, checked part by part without following links; BadPath otherwise."""
    path = unquote(urlsplit(request_path).path, errors="strict")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadPath(HTTPStatus.BAD_REQUEST)  # NUL and control characters name no file
    parts = [p for p in path.split("/") if p]
    if not parts or any(p.startswith(".") or "\\" in p for p in parts):
        raise BadPath(HTTPStatus.NOT_FOUND)  # "..", dotfiles and hidden folders alike
    if not parts[-1].endswith(REPORT_SUFFIXES):
        raise BadPath(HTTPStatus.NOT_FOUND)
    current = root
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = current.lstat()
        except (OSError, ValueError):
            raise BadPath(HTTPStatus.NOT_FOUND) from None
        last = i == len(parts) - 1
        if stat.S_ISLNK(st.st_mode) or not (stat.S_ISREG(st.st_mode) if last else stat.S_ISDIR(st.st_mode)):
            raise BadPath(HTTPStatus.NOT_FOUND)
    return current


def _plain_entries(folder: Path):
    """(name, is_dir) of the entries of `folder` that are plain files or folders with a visible, printable name;
    links and everything else are left out, as the server would refuse them."""
    out = []
    with os.scandir(folder) as it:
        for e in it:
            name = e.name
            if name.startswith(".") or "\\" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
                continue
            if e.is_symlink():
                continue
            if e.is_dir(follow_symlinks=False):
                out.append((name, True))
            elif e.is_file(follow_symlinks=False):
                out.append((name, False))
    return sorted(out)


def report_label(name: str) -> str:
    """What a report file is, in words, from the name its writer gives it."""
    stem = name.removesuffix(".html")
    if stem == "proof":
        return "Brand proof"
    if stem == "policy_replay":
        return "Policy replay: would another budget policy have done better?"
    if stem.startswith("plan_"):
        return f"Budget plan {stem.removeprefix('plan_')}"
    if stem.startswith("audit_"):
        return f"Causal audit {stem.removeprefix('audit_')}"
    return f"Model {stem}"


def _index_target(root: Path, request_path: str) -> tuple[Path, str | None] | None:
    """(folder, tenant) when the path names the index (`/`) or a tenant's index (`/<tenant>/` or `/<tenant>`);
    None when it names something else; BadPath for what no index can be."""
    path = unquote(urlsplit(request_path).path, errors="strict")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadPath(HTTPStatus.BAD_REQUEST)
    parts = [p for p in path.split("/") if p]
    if not parts:
        return root, None
    if len(parts) != 1 or parts[0].endswith(REPORT_SUFFIXES):
        return None
    try:
        tenant = config.validate_tenant_id(parts[0])
    except ValueError:
        raise BadPath(HTTPStatus.NOT_FOUND) from None
    folder = root / tenant
    try:
        st = folder.lstat()
    except OSError:
        raise BadPath(HTTPStatus.NOT_FOUND) from None
    if not stat.S_ISDIR(st.st_mode):  # a link to a folder is refused like a link to a report
        raise BadPath(HTTPStatus.NOT_FOUND)
    return folder, tenant


def render_index(root: Path, tenant: str | None, landing: Path | None = None) -> str:
    """The generated index page: tenants with their report counts at `/`, a tenant's reports at `/<tenant>/`."""
    from weathervane import reports as rp

    if tenant is None:
        items = []
        for name, is_dir in _plain_entries(root):
            if not is_dir or config.TENANT_ID_PATTERN.fullmatch(name) is None:
                continue
            n = sum(1 for f, d in _plain_entries(root / name) if not d and f.endswith(REPORT_SUFFIXES))
            items.append(f'<li><a href="/{quote(name)}/">{rp.esc(name)}</a> '
                         f'<span class="note">{n} report{"s" if n != 1 else ""}</span></li>')
        body = (f'<ul class="plain" data-testid="tenants">{"".join(items)}</ul>' if items else
                "<p>No reports yet. Run <code>make demo</code> or materialize a tenant in the Dagster UI.</p>")
        return rp.page("Weathervane reports", body, subtitle="One folder of reports per brand (tenant).")
    reports = [f for f, d in _plain_entries(root / tenant) if not d and f.endswith(REPORT_SUFFIXES)]
    order = {"proof": 0, "plan_": 1, "policy_replay": 3, "audit_": 4}
    reports.sort(key=lambda f: (next((v for k, v in order.items() if f.startswith(k)), 2), f))
    items = "".join(f'<li><a href="/{quote(tenant)}/{quote(f)}">{rp.esc(report_label(f))}</a> '
                    f'<span class="note">{rp.esc(f)}</span></li>' for f in reports)
    body = (f'<ul class="plain" data-testid="reports">{items}</ul>' if items else "<p>No reports yet.</p>")
    body += '<p class="note"><a href="/">All tenants</a></p>'
    return rp.page(f"Reports — {tenant}", body, banner=rp.simulated_banner(tenant, landing) if landing else None)


class _ReportHandler(BaseHTTPRequestHandler):
    root: Path = Path(".")
    landing: Path | None = None  # the landing folder, where a simulated tenant's truth file marks it as such
    server_version = "weathervane-reports"
    sys_version = ""

    def _headers(self, status: int, length: int, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", REPORT_CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _refuse(self, status: HTTPStatus, body: bool) -> None:
        text = f"{status.value} {status.phrase}\n".encode()
        self._headers(status.value, len(text))
        if body:
            self.wfile.write(text)

    def _serve(self, body: bool) -> None:
        if self.path == "/favicon.ico":  # browsers ask for one; a report page has none
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            index = _index_target(self.root, self.path)
            if index is None:
                path = resolve_report(self.root, self.path)
                # O_NOFOLLOW: a file swapped for a link after the check is still not followed
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
            else:
                data = render_index(self.root, index[1], self.landing).encode()
        except BadPath as exc:
            self._refuse(exc.status, body)
            return
        except (OSError, ValueError):
            self._refuse(HTTPStatus.NOT_FOUND, body)
            return
        if index is not None:
            self._headers(200, len(data), "text/html; charset=utf-8")
            if body:
                self.wfile.write(data)
            return
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_REPORT_BYTES:
                self._refuse(HTTPStatus.NOT_FOUND, body)
                return
            data = fh.read(MAX_REPORT_BYTES)
        self._headers(200, len(data), "text/html; charset=utf-8")
        if body:
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._serve(body=True)

    def do_HEAD(self):  # noqa: N802
        self._serve(body=False)

    def log_message(self, format, *args):  # quiet: the UI's own server logs are the ones to read
        pass


def make_report_server(host: str = "127.0.0.1", port: int = DEFAULT_PORT, reports_dir: Path | str | None = None,
                       landing_root: Path | str | None = None) -> ThreadingHTTPServer:
    """The server an entry point starts: folders not given are the configured ones."""
    root = Path(reports_dir or config.reports_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    landing = Path(landing_root or config.landing_root())
    handler = type("ReportHandler", (_ReportHandler,), {"root": root, "landing": landing})
    return ThreadingHTTPServer((host, port), handler)


def serve_reports(host: str = "127.0.0.1", port: int = DEFAULT_PORT, reports_dir: Path | str | None = None) -> None:
    make_report_server(host, port, reports_dir).serve_forever()
