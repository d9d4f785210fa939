"""Security, round two (issue 24): values from files never reach a page unescaped, the reports server serves only
reports, the gap fill never replaces a real tenant, ingest caps what one file may cost and prints names safely,
and the command line refuses bad input without starting work. Real files, real servers, real DuckDB."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.test_proof import _sniffed, _weather_fixture
from tests.test_sniff import rich_profile
from weathervane import reports as rp
from weathervane.config import TenantConfigError, load_tenant_config
from weathervane.proof import ProofRun, fill_gaps, render_proof
from weathervane.report_server import make_report_server

REPO_ROOT = Path(__file__).resolve().parent.parent
XSS_CURRENCY = "<img src=x onerror=&#97;&#108;&#101;&#114;&#116;&#40;&#49;&#41;>"


# --- 1. stored XSS through tenant.yaml currency -----------------------------------------------------------


def test_a_currency_that_is_not_iso_4217_is_refused_naming_file_and_field(tmp_path):
    landing = tmp_path / "landing"
    (landing / "shop").mkdir(parents=True)
    (landing / "shop" / "tenant.yaml").write_text(json.dumps({"currency": XSS_CURRENCY}) + "\n")
    with pytest.raises(TenantConfigError) as err:
        load_tenant_config(landing, "shop")
    assert "tenant.yaml" in str(err.value) and "field currency" in str(err.value)
    assert "ISO 4217" in str(err.value)
    for code in ("usd", "US", "XXX", "ABC", "US$"):
        (landing / "shop" / "tenant.yaml").write_text(f"currency: {code}\n")
        with pytest.raises(TenantConfigError, match="currency"):
            load_tenant_config(landing, "shop")
    (landing / "shop" / "tenant.yaml").write_text("currency: SEK\n")
    assert load_tenant_config(landing, "shop").currency == "SEK"


def test_report_money_refuses_anything_but_a_currency_code():
    with pytest.raises(ValueError):
        rp.money(12.0, XSS_CURRENCY)
    with pytest.raises(ValueError):
        rp.money_short(12.0, "<b>")
    assert rp.money(12345.6, "SEK") == "12,346 SEK"


def test_the_proof_page_escapes_values_from_the_warehouse(tmp_path):
    con = _sniffed(tmp_path, rich_profile(), "live")
    con.execute("create schema if not exists mmm")
    con.execute("create table mmm.models (model_id varchar, tenant_id varchar, grain_product varchar, "
                "grain_geo varchar, fitted_at timestamp, train_start date, train_end date, n_obs integer, "
                "sampler varchar, draws integer, chains integer, max_rhat double, min_ess_bulk double, "
                "divergences integer, holdout_mape double, status varchar)")
    con.execute("insert into mmm.models values ('m1', 'shop', '<script>alert(1)</script>', 'region', now(), "
                "'2024-01-01', '2024-06-30', 100, 'nuts', 100, 2, 1.01, 400, 0, 0.1, 'ok')")
    con.execute("create table mmm.channel_summary (model_id varchar, channel varchar, geo_id varchar, spend double, "
                "contribution_mean double, contribution_p05 double, contribution_p95 double, roas_mean double, "
                "roas_p05 double, roas_p95 double, mroas_mean double)")
    con.execute("insert into mmm.channel_summary values ('m1', '<img src=x onerror=alert(2)>', null, 1000, 2000, "
                "1500, 2500, 2, 1.5, 2.5, 1.2)")
    con.execute("create schema if not exists decisions")
    con.execute("create table decisions.plans (plan_id varchar, tenant_id varchar, created_at timestamp, "
                "horizon_start date, horizon_end date, total_budget double, fallback_reason varchar)")
    con.execute("insert into decisions.plans values ('p1', 'shop', now(), '2024-07-01', '2024-07-28', 100, "
                "'data-key <svg onload=alert(3)>')")
    html = render_proof(con, ProofRun("shop", "shop", "live", "week", {}), currency="SEK")
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;svg onload=alert(3)&gt;" in html
    assert re.search(r"<td>[^<]*SEK</td>", html)  # money cells still show the tenant's currency


# --- 8. the reports server serves reports only ------------------------------------------------------------


@pytest.fixture
def report_server(tmp_path):
    reports = tmp_path / "reports"
    (reports / "shop").mkdir(parents=True)
    (reports / "shop" / "proof.html").write_text("<!doctype html><p>proof</p>")
    (reports / "shop" / ".secret.html").write_text("hidden")
    (reports / "shop" / "notes.txt").write_text("not a report")
    (reports / ".git").mkdir()
    (reports / ".git" / "config.html").write_text("hidden folder")
    secret = tmp_path / "outside.html"
    secret.write_text("outside the reports folder")
    (reports / "shop" / "passwd.html").symlink_to("/etc/passwd")
    (reports / "shop" / "outside.html").symlink_to(secret)
    (reports / "root").symlink_to("/")
    server = make_report_server(port=0, reports_dir=reports)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _get(server, path: str, method: str = "GET"):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_reports_are_served_with_a_policy_that_runs_no_script(report_server):
    status, headers, body = _get(report_server, "/shop/proof.html")
    assert status == 200 and body == b"<!doctype html><p>proof</p>"
    assert headers["Content-Type"].startswith("text/html")
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    status, headers, _ = _get(report_server, "/shop/proof.html", method="HEAD")
    assert status == 200 and "Content-Security-Policy" in headers


@pytest.mark.parametrize("path, expected", [
    ("/shop/passwd.html", 404),  # a link to /etc/passwd
    ("/shop/outside.html", 404),  # a link out of the folder
    ("/root/etc/passwd", 404),  # a linked folder exposing /
    ("/root/etc/hostname.html", 404),
    ("/shop/.secret.html", 404),  # dotfiles
    ("/.git/config.html", 404),  # hidden folders
    ("/shop/notes.txt", 404),  # not a report
    ("/shop/", 200),  # a generated index of the tenant's reports, not a listing
    ("/", 200),
    ("/shop/%2e%2e/%2e%2e/outside.html", 404),
    ("/t/%00", 400),  # NUL: no file has it in its name
    ("/shop/proof.html%00.txt", 400),
    ("/shop/%ff.html", 404),
])
def test_links_hidden_files_and_other_files_are_not_served(report_server, path, expected):
    status, headers, body = _get(report_server, path)
    assert status == expected, (path, body)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b"root:" not in body and b"outside the reports folder" not in body and b"hidden" not in body
    # the server is still up and well after every refusal
    assert _get(report_server, "/shop/proof.html")[0] == 200


# --- 9. the gap fill never replaces a real tenant ---------------------------------------------------------


def test_gap_fill_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    observed = pd.date_range("2023-01-01", "2023-12-31", freq="D")
    landing, con, _ = _weather_fixture(tmp_path, observed, "US-CA")
    p = rich_profile(geos=("US-CA",))
    p.tenant_id = "shop"
    p.sales_start, p.sales_end = date(2023, 1, 1), date(2024, 1, 31)
    p.forecast_geos = []
    real = landing / "shop-filled" / "shopify" / "orders" / "real.jsonl"
    real.parent.mkdir(parents=True)
    real.write_text('{"id": 1}\n')
    with pytest.raises(FileExistsError, match="not written by the gap fill"):
        fill_gaps(con, landing, p, horizon_days=7)
    assert real.read_text() == '{"id": 1}\n'
    real.unlink()
    for folder in (real.parent, real.parent.parent):
        folder.rmdir()
    # an empty folder, or one the gap fill wrote itself, is (re)written
    filled, written = fill_gaps(con, landing, p, horizon_days=7)
    assert filled == "shop-filled" and written
    filled_again, _ = fill_gaps(con, landing, p, horizon_days=7)
    assert filled_again == "shop-filled"
    con.close()


# --- 16. a port number beyond 65535 is refused, not wrapped onto another port ------------------------------


@pytest.mark.parametrize("argv", [["serve", "--port", "99999"], ["serve", "--port", "-1"], ["serve", "--port", "0x50"],
                                  ["ui", "--port", "65536"], ["ui", "--reports-port", "70000"],
                                  ["ui", "--approvals-port", "99999"]])
def test_a_port_outside_1_to_65535_is_refused_before_anything_starts(argv, capsys):
    from dagster_project.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "port" in err and ("outside" in err or "not a port number" in err)
    assert build_parser().parse_args(["ui", "--approvals-port", "0"]).approvals_port == 0


# --- 11. what one landing file may cost -------------------------------------------------------------------


def _mmm_csv(columns: list[str], rows: int = 3) -> str:
    lines = [",".join(["date", "revenue", "spend_meta", *columns])]
    for i in range(rows):
        lines.append(",".join([f"2024-01-{i + 1:02d}", "100", "10", *["1"] * len(columns)]))
    return "\n".join(lines) + "\n"


def _ingest_mmm(wv_env, name: str, content: str | bytes):
    from weathervane.landing import ingest_tenant
    from weathervane.warehouse import connect

    folder = wv_env["landing"] / "acme" / "aggregated" / "mmm_input"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    con = connect(wv_env["warehouse"])
    try:
        report = ingest_tenant(con, wv_env["landing"], "acme")
        rows = con.execute("select count(*) from raw.aggregated__mmm_input").fetchone()[0]
        quarantined = con.execute("select file_path, line, field, reason from ops.quarantined_files").fetchall()
    finally:
        con.close()
    return report, rows, quarantined


def test_a_csv_with_a_million_columns_is_quarantined_quickly_with_the_line_named(wv_env):
    header = ",".join(f"c{i}" for i in range(1_000_000))
    started = time.perf_counter()
    report, rows, quarantined = _ingest_mmm(wv_env, "wide.csv", f"date,revenue,spend_meta,{header}\n2024-01-01,1,1\n")
    assert time.perf_counter() - started < 10
    assert rows == 0 and report.files_quarantined == 1
    (path, line, _, reason), = quarantined
    assert path == "aggregated/mmm_input/wide.csv" and line == 1 and "longer than the 262144" in reason
    assert report.quarantined[0].describe().startswith("aggregated/mmm_input/wide.csv line 1: line of ")


def test_a_csv_header_beyond_the_column_cap_names_the_first_column_beyond(wv_env):
    report, rows, quarantined = _ingest_mmm(wv_env, "many.csv", _mmm_csv([f"x{i}" for i in range(600)]))
    assert rows == 0
    (path, line, field, reason), = quarantined
    assert (line, field) == (1, "x509") and "603 columns, more than the 512" in reason
    # within the cap it loads
    report, rows, _ = _ingest_mmm(wv_env, "fine.csv", _mmm_csv([f"x{i}" for i in range(100)]))
    assert rows == 3 and report.files_loaded == 1


def test_a_csv_line_or_file_beyond_its_stream_cap_is_quarantined(wv_env):
    from weathervane.landing.streams import get_stream

    long_row = _mmm_csv([]) + "2024-02-01," + "9" * (300 << 10) + ",1\n"
    _, rows, quarantined = _ingest_mmm(wv_env, "longrow.csv", long_row)
    assert rows == 0 and quarantined[0][1] == 5 and "longer than" in quarantined[0][3]
    cap = get_stream("experiments", "lift_tests").max_file_bytes
    big = wv_env["landing"] / "acme" / "experiments" / "lift_tests" / "big.csv"
    big.parent.mkdir(parents=True)
    with big.open("w") as fh:
        fh.write("channel,geo_id,start_date,end_date,spend_delta,kpi_delta,kpi_delta_sd\n")
        row = "meta,US-CA,2024-01-01,2024-01-28,100,200,10\n"
        fh.write(row * (cap // len(row) + 1))
    from weathervane.landing import ingest_tenant
    from weathervane.warehouse import connect

    con = connect(wv_env["warehouse"])
    try:
        report = ingest_tenant(con, wv_env["landing"], "acme")
    finally:
        con.close()
    (q,) = [q for q in report.quarantined if q.file_path.endswith("big.csv")]
    assert f"larger than the {cap} experiments/lift_tests allows" in q.reason


# --- 14. terminal escape codes in landing file names ------------------------------------------------------


def test_ingest_prints_hostile_file_names_with_control_characters_escaped(wv_env):
    folder = wv_env["landing"] / "acme" / "shopify" / "orders"
    folder.mkdir(parents=True)
    (folder / "a\x1b[2J\x1b]0;pwned\x07\u202eb.jsonl").write_text("{}\n")
    (folder / "ok\x1b[31m.jsonl").write_text("not json\n")
    env = {**os.environ, "WEATHERVANE_WAREHOUSE": str(wv_env["warehouse"]), "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "weathervane.cli", "ingest", "--tenant", "acme", "--landing",
                           str(wv_env["landing"])], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert "QUARANTINED" in out, out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out


# --- 15. unknown tenants and a stopped CLI ---------------------------------------------------------------


def _cli_env(wv_env, tmp_path) -> dict:
    return {**os.environ, **{f"WEATHERVANE_{k.upper()}": str(v) for k, v in wv_env.items()},
            "DAGSTER_HOME": str(tmp_path / "dagster_home"), "COLUMNS": "200"}


@pytest.mark.parametrize("command", [["sniff", "--tenant", "nosuch"], ["proof", "--tenant", "nosuch"]])
def test_sniff_and_proof_refuse_an_unknown_tenant_before_starting_a_run(wv_env, tmp_path, command):
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dagster_project.cli", *command], capture_output=True, text=True,
                          env=_cli_env(wv_env, tmp_path), cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "unknown tenant 'nosuch'" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "dagster_home").exists()  # no Dagster instance was even opened
    assert time.perf_counter() - started < 60


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.heavy
def test_sigterm_to_the_cli_stops_its_job_child_too(wv_env, tmp_path):
    (wv_env["landing"] / "acme").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "dagster_project.cli", "sniff", "--tenant", "acme"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_cli_env(wv_env, tmp_path), cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        children = []
        while not children and time.monotonic() < deadline and proc.poll() is None:
            children = _children(proc.pid)
            time.sleep(0.2)
        assert children, "the CLI never started its job process"
        time.sleep(3)  # the child is importing Dagster or running the job
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
        assert proc.returncode != 0
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(c) for c in children), "the job's child outlived the CLI"
        assert "BrokenPipe" not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
