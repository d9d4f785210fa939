"""Hostile and careless landing files: each is refused (quarantined, or tenant.yaml rejected) with a reason that
names the file, line and field, and the tenant's good files still load."""
from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path

import pytest

from tests.conftest import ACME_EXAMPLE
from weathervane import config
from weathervane.config import TenantConfigError, load_tenant_config
from weathervane.landing import LandingPathError, current_records, ingest_stream, ingest_tenant, list_tenants
from weathervane.landing.parse import MAX_DECOMPRESSED_BYTES, MAX_LINE_BYTES
from weathervane.warehouse import connect

TENANT = "acme"
ORDER = json.loads((ACME_EXAMPLE / "shopify/orders/2024-06-03.jsonl").read_text().splitlines()[0])
META = json.loads((ACME_EXAMPLE / "meta_ads/ads_insights_region/2024-06-03.jsonl").read_text().splitlines()[0])
WEATHER = json.loads((ACME_EXAMPLE / "weather/daily/US-CA/2024-06.json").read_text())


@pytest.fixture
def landing(wv_env) -> Path:
    (wv_env["landing"] / TENANT).mkdir()
    return wv_env["landing"]


@pytest.fixture
def con(wv_env):
    c = connect(wv_env["warehouse"])
    yield c
    c.close()


def _put(landing: Path, rel: str, content: str | bytes) -> Path:
    path = landing / TENANT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def _only_quarantine(con, landing, source, stream):
    report = ingest_stream(con, landing, TENANT, source, stream)
    assert report.files_loaded == 0 and report.rows == 0, report
    assert report.files_quarantined == 1, report
    rows = con.execute(f"select count(*) from raw.{source}__{stream}").fetchone()[0]
    assert rows == 0
    return report.quarantined[0]


# --- 1. column names from a CSV header ------------------------------------------------------------------


def test_a_header_carrying_sql_is_quarantined(landing, con):
    hostile = "spend_x' as double) + (select sum(net_revenue) from marts.fct_sales_daily where tenant_id = 'other') --"
    _put(landing, "aggregated/mmm_input/evil.csv",
         f'date,geo_id,revenue,spend_meta,"{hostile}"\n2024-05-06,US-CA,100,10,1\n')
    q = _only_quarantine(con, landing, "aggregated", "mmm_input")
    assert q.line == 1 and "column name" in q.reason and "not allowed" in q.reason


# --- 3. non-finite and out-of-range values --------------------------------------------------------------


@pytest.mark.parametrize("case, rel, content, field", [
    ("nan temperature", "weather/daily/US-CA/w.json",
     json.dumps(WEATHER).replace("21.6", "NaN"), "daily.temperature_2m_mean.0"),
    ("spend 1e400", "meta_ads/ads_insights_region/m.jsonl", _jsonl({**META, "spend": "1e400"}), "spend"),
    ("order id 2^70", "shopify/orders/o.jsonl", _jsonl({**ORDER, "id": 2**70}), "id"),
    ("quantity 2^40", "shopify/orders/q.jsonl",
     _jsonl({**ORDER, "line_items": [{**ORDER["line_items"][0], "quantity": 2**40}]}), "line_items.0.quantity"),
    ("inf amount", "shopify/orders/a.jsonl", _jsonl({**ORDER, "total_price": "1e999"}), "total_price"),
    ("NaN in a kept field", "shopify/orders/n.jsonl", _jsonl(json.dumps(ORDER)[:-1] + ', "note": NaN}'), None),
    ("nan revenue", "aggregated/mmm_input/r.csv", "date,revenue,spend_meta\n2024-05-06,nan,1\n", "revenue"),
    ("inf spend column", "aggregated/mmm_input/s.csv", "date,revenue,spend_meta\n2024-05-06,1,1e400\n",
     "spend_meta"),
    ("inf lift", "experiments/lift_tests/l.csv",
     "channel,geo_id,start_date,end_date,spend_delta,kpi_delta,kpi_delta_sd\nmeta,,2024-02-05,2024-03-03,inf,1,1\n",
     "spend_delta"),
])
def test_non_finite_and_out_of_range_values_are_quarantined(landing, con, case, rel, content, field):
    _put(landing, rel, content)
    source, stream = rel.split("/")[:2]
    q = _only_quarantine(con, landing, source, stream)
    assert q.field == field, (case, q)
    assert q.line is not None


# --- 4. time ----------------------------------------------------------------------------------------------


def test_a_timestamp_without_offset_is_quarantined(landing, con, monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    _put(landing, "shopify/orders/naive.jsonl", _jsonl({**ORDER, "created_at": "2024-06-03T23:30:00"}))
    q = _only_quarantine(con, landing, "shopify", "orders")
    assert q.field == "created_at" and "timezone" in q.reason.lower()


@pytest.mark.parametrize("rel, content, field", [
    ("shopify/orders/far.jsonl", _jsonl({**ORDER, "created_at": "2200-01-10T09:00:00+00:00"}), "created_at"),
    ("meta_ads/ads_insights_region/old.jsonl", _jsonl({**META, "date_start": "1970-01-01"}), "date_start"),
    ("aggregated/mmm_input/far.csv", "date,revenue,spend_meta\n2200-01-10,1,1\n", "date"),
])
def test_dates_outside_the_window_are_quarantined(landing, con, rel, content, field):
    _put(landing, rel, content)
    source, stream = rel.split("/")[:2]
    q = _only_quarantine(con, landing, source, stream)
    assert q.field == field and "outside" in q.reason


# --- 5. corrections ---------------------------------------------------------------------------------------


def test_a_corrected_lift_test_supersedes_the_old_one(landing, con):
    header = "channel,geo_id,start_date,end_date,spend_delta,kpi_delta,kpi_delta_sd\n"
    _put(landing, "experiments/lift_tests/a-first.csv", header + "meta,US-WA,2024-02-05,2024-03-03,12000,21500,6100\n"
         "meta,US-CA,2024-02-05,2024-03-03,9000,15000,5000\n")
    ingest_stream(con, landing, TENANT, "experiments", "lift_tests")
    _put(landing, "experiments/lift_tests/0-correction.csv",
         header + "meta,US-WA ,2024-02-05,2024-03-03,12000,19800,6000\n")
    ingest_stream(con, landing, TENANT, "experiments", "lift_tests")
    # what the fit reads (weathervane.mmm.lift_tests.read_lift_tests)
    records = [json.loads(rec) for _, _, rec in current_records(con, TENANT, "experiments", "lift_tests")]
    got = sorted((r["geo_id"].strip(), r["kpi_delta"]) for r in records)
    assert got == [("US-CA", "15000"), ("US-WA", "19800")]


# --- 9. bombs and long lines ------------------------------------------------------------------------------


def _gzip_of_zeros(n_bytes: int) -> bytes:
    """A valid gzip file of `n_bytes` zeros (whole MiB), built from one compressed MiB repeated: with a full
    flush between them every MiB compresses to the same independent bytes."""
    chunk = b"\0" * (1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    n = n_bytes >> 20
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    final = b"\x03\x00"  # an empty final block
    return header + block * n + final + struct.pack("<II", crc, (n << 20) & 0xFFFFFFFF)


def test_a_gzip_bomb_is_quarantined_and_the_other_files_load(landing, con):
    bomb = _gzip_of_zeros(MAX_DECOMPRESSED_BYTES + (8 << 20))
    assert len(bomb) < 2 << 20
    _put(landing, "shopify/orders/bomb.jsonl.gz", bomb)
    _put(landing, "shopify/orders/good.jsonl", _jsonl(ORDER))
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert report.loaded == ["shopify/orders/good.jsonl"]
    (q,) = report.quarantined
    assert q.file_path == "shopify/orders/bomb.jsonl.gz" and "decompression bomb" in q.reason


def test_an_overlong_line_is_quarantined(landing, con):
    _put(landing, "shopify/orders/long.jsonl", _jsonl({**ORDER, "note": "x" * (MAX_LINE_BYTES + 10)}))
    q = _only_quarantine(con, landing, "shopify", "orders")
    assert q.line == 1 and "longer than" in q.reason


# --- 10. links and non-regular files ----------------------------------------------------------------------


def test_a_linked_tenant_folder_is_refused(landing, con):
    _put(landing, "shopify/orders/good.jsonl", _jsonl(ORDER))
    os.symlink(landing / TENANT, landing / "beta")
    assert "beta" in list_tenants(landing)[1]
    with pytest.raises(LandingPathError, match="symbolic link"):
        ingest_tenant(con, landing, "beta")
    with pytest.raises(TenantConfigError, match="symbolic link"):
        load_tenant_config(landing, "beta")
    assert con.execute("select count(*) from raw.shopify__orders").fetchone()[0] == 0


def _load_in_thread(landing: Path, tenant: str):
    out: dict = {}

    def run():
        try:
            out["cfg"] = load_tenant_config(landing, tenant)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading tenant.yaml blocked"
    return out


def test_tenant_yaml_as_a_fifo_or_a_device_link_is_refused_without_blocking(landing, con):
    yaml_path = landing / TENANT / "tenant.yaml"
    os.mkfifo(yaml_path)
    out = _load_in_thread(landing, TENANT)
    assert isinstance(out.get("error"), TenantConfigError) and "regular file" in str(out["error"])
    yaml_path.unlink()
    os.symlink("/dev/zero", yaml_path)
    out = _load_in_thread(landing, TENANT)
    assert isinstance(out.get("error"), TenantConfigError) and "symbolic link" in str(out["error"])
    _put(landing, "shopify/orders/good.jsonl", _jsonl(ORDER))
    report = ingest_tenant(con, landing, TENANT)  # the data still loads; the settings are refused
    assert report.files_loaded == 1 and "symbolic link" in report.config_error


def test_a_fifo_among_the_files_is_refused_unread(landing, con):
    fifo = landing / TENANT / "shopify/orders/pipe.jsonl"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    q = _only_quarantine(con, landing, "shopify", "orders")
    assert q.reason == "not a regular file"


# --- 11. settings DuckDB would reject at dbt time ---------------------------------------------------------


@pytest.mark.parametrize("yaml_text, key", [
    ('channels: [{name: meta_prospecting, platform: meta_ads, campaign_name: "(?=Prospect)P"}]\n',
     "channels.0.campaign_name"),
    ("timezone: posix/America/New_York\n", "timezone"),
    ("autopilot: {webhook_url: 'file:///etc/passwd'}\n", "autopilot.webhook_url"),
])
def test_settings_duckdb_rejects_are_refused_naming_the_key(landing, yaml_text, key):
    _put(landing, "tenant.yaml", yaml_text)
    with pytest.raises(TenantConfigError, match=f"field {key}"):
        load_tenant_config(landing, TENANT)


def test_a_valid_re2_rule_and_zone_are_accepted(landing):
    _put(landing, "tenant.yaml", 'timezone: America/New_York\n'
         'channels: [{name: meta_prospecting, platform: meta_ads, campaign_name: "(?i)prospect"}]\n')
    cfg = config.load_tenant_config(landing, TENANT)
    assert cfg.timezone == "America/New_York" and cfg.channels[0].campaign_name == "(?i)prospect"


# --- 12. empty gzip, case-duplicate headers ---------------------------------------------------------------


def test_an_empty_gz_file_is_quarantined(landing, con):
    _put(landing, "shopify/orders/empty.jsonl.gz", b"")
    q = _only_quarantine(con, landing, "shopify", "orders")
    assert "empty file" in q.reason


def test_headers_differing_only_in_case_are_quarantined(landing, con):
    _put(landing, "aggregated/mmm_input/case.csv", "date,revenue,spend_Meta,spend_meta\n2024-05-06,1,1,2\n")
    q = _only_quarantine(con, landing, "aggregated", "mmm_input")
    assert q.field == "spend_meta" and "only in case" in q.reason


def test_the_acme_example_still_loads_whole(wv_env, con):
    shutil.copytree(ACME_EXAMPLE, wv_env["landing"] / TENANT)
    report = ingest_tenant(con, wv_env["landing"], TENANT)
    assert report.files_quarantined == 0 and report.config_error is None, report.summary()
