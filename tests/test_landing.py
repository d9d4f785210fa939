"""Landing zone: parsing, validation, quarantine and loading into raw tables, on real DuckDB files."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ACME_EXAMPLE
from weathervane.config import InvalidTenantId
from weathervane.landing import (
    STREAMS,
    ingest_stream,
    ingest_tenant,
    landing_files,
    list_tenants,
    pending_files,
    quarantine_summary,
    stale_schemas,
)
from weathervane.warehouse import connect, transaction

TENANT = "acme"


@pytest.fixture
def landing(wv_env) -> Path:
    shutil.copytree(ACME_EXAMPLE, wv_env["landing"] / TENANT)
    return wv_env["landing"]


@pytest.fixture
def con(wv_env):
    c = connect(wv_env["warehouse"])
    yield c
    c.close()


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().split("\n") if ln.strip()]


def _expected_rows(tenant_root: Path, stream) -> int:
    total = 0
    for p in (tenant_root / stream.folder).rglob("*"):
        if not p.is_file():
            continue
        if stream.format == "json":
            total += 1
        elif stream.format == "csv":
            total += len(_lines(p)) - 1
        else:
            total += len(_lines(p))
    return total


def _write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _example(rel: str) -> list[dict]:
    return [json.loads(ln) for ln in _lines(ACME_EXAMPLE / rel)]


def _raw_count(con, stream_key: str, file_path: str | None = None) -> int:
    if file_path is None:
        return con.execute(f"SELECT count(*) FROM raw.{stream_key}").fetchone()[0]
    return con.execute(f"SELECT count(*) FROM raw.{stream_key} WHERE file_path = ?", [file_path]).fetchone()[0]


def _quarantine_rows(con, file_path: str) -> list[tuple]:
    return con.execute(
        "SELECT line, field, reason, file_hash FROM ops.quarantined_files WHERE file_path = ?", [file_path]
    ).fetchall()


# --- the example tenant ------------------------------------------------------------------------------------


def test_example_tenant_loads_every_stream_with_exact_rows(landing, con):
    report = ingest_tenant(con, landing, TENANT)
    root = landing / TENANT
    assert report.files_quarantined == 0, report.summary()
    for s in STREAMS:
        expected = _expected_rows(root, s)
        assert expected > 0, f"the example has a file for {s.key}"
        assert _raw_count(con, s.key) == expected, s.key
        assert report.stream(s.source, s.stream).rows == expected
    loaded = con.execute("SELECT file_path, file_hash, records FROM ops.loaded_files ORDER BY 1").fetchall()
    assert len(loaded) == len(STREAMS)
    for rel, digest, records in loaded:
        assert digest == hashlib.sha256((root / rel).read_bytes()).hexdigest()
        assert records == con.execute(
            f"SELECT count(*) FROM raw.{rel.split('/')[0]}__{rel.split('/')[1]} WHERE file_path = ?", [rel]
        ).fetchone()[0]


def test_raw_rows_keep_the_record_as_delivered(landing, con):
    ingest_tenant(con, landing, TENANT)
    rel = "meta_ads/ads_insights_region/2024-06-03.jsonl"
    rows = con.execute(
        "SELECT source_line, geo_id, record::VARCHAR, tenant_id FROM raw.meta_ads__ads_insights_region "
        "ORDER BY source_line"
    ).fetchall()
    assert [json.loads(r[2]) for r in rows] == _example(rel)
    assert [r[0] for r in rows] == [1, 2]
    assert {r[1] for r in rows} == {None} and {r[3] for r in rows} == {TENANT}

    weather = con.execute("SELECT geo_id, source_line, record->>'$.timezone' FROM raw.weather__daily").fetchall()
    assert weather == [("US-CA", 1, "America/Los_Angeles")]

    # CSV rows become JSON objects of strings keyed by header; line 1 is the header.
    lift = con.execute("SELECT source_line, record::VARCHAR FROM raw.experiments__lift_tests").fetchall()
    assert lift[0][0] == 2
    assert json.loads(lift[0][1])["geo_id"] == "US-WA" and json.loads(lift[0][1])["spend_delta"] == "12000"


def test_reingest_is_a_noop(landing, con):
    first = ingest_tenant(con, landing, TENANT)
    counts = {s.key: _raw_count(con, s.key) for s in STREAMS}
    second = ingest_tenant(con, landing, TENANT)
    assert second.files_loaded == 0 and second.rows == 0
    assert second.files_skipped == first.files_loaded
    assert {s.key: _raw_count(con, s.key) for s in STREAMS} == counts
    assert con.execute("SELECT count(*) FROM ops.loaded_files").fetchone()[0] == first.files_loaded


def test_redelivered_copy_under_another_name_is_skipped(landing, con):
    ingest_tenant(con, landing, TENANT)
    src = landing / TENANT / "shopify/orders/2024-06-03.jsonl"
    shutil.copyfile(src, src.with_name("2024-06-03-again.jsonl"))
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert (report.files_seen, report.files_skipped, report.files_loaded) == (2, 2, 0)


def test_overlapping_keys_append_to_raw(landing, con):
    ingest_tenant(con, landing, TENANT)
    before = _raw_count(con, "shopify__orders")
    orders = _example("shopify/orders/2024-06-03.jsonl")
    orders[0]["updated_at"] = "2024-06-04T10:00:00-07:00"
    orders[0]["cancelled_at"] = "2024-06-04T10:00:00-07:00"
    _write_jsonl(landing / TENANT / "shopify/orders/2024-06-04.jsonl", orders[:1])
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert report.files_loaded == 1 and report.rows == 1
    assert _raw_count(con, "shopify__orders") == before + 1
    ids = con.execute("SELECT record->>'$.id' FROM raw.shopify__orders").fetchall()
    assert len(ids) == before + 1 and len({i for (i,) in ids}) == before  # same id twice, both kept


def test_unknown_fields_are_kept(landing, con):
    orders = _example("shopify/orders/2024-06-03.jsonl")
    orders[0]["note_attributes"] = [{"name": "gift", "value": "yes"}]
    _write_jsonl(landing / TENANT / "shopify/orders/extra.jsonl", orders[:1])
    ingest_stream(con, landing, TENANT, "shopify", "orders")
    got = con.execute(
        "SELECT record->'$.note_attributes'->0->>'$.name' FROM raw.shopify__orders "
        "WHERE file_path = 'shopify/orders/extra.jsonl'"
    ).fetchone()
    assert got == ("gift",)


def test_gzipped_jsonl_loads(landing, con):
    orders = _example("shopify/orders/2024-06-03.jsonl")
    for o in orders:
        o["id"] += 1000
    path = landing / TENANT / "shopify/orders/2024-06-05.jsonl.gz"
    data = gzip.compress("".join(json.dumps(o) + "\n" for o in orders).encode())
    path.write_bytes(data)
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert report.files_quarantined == 0
    rel = "shopify/orders/2024-06-05.jsonl.gz"
    assert _raw_count(con, "shopify__orders", rel) == len(orders)
    # the hash is of the bytes as delivered, before gunzip
    assert con.execute("SELECT file_hash FROM ops.loaded_files WHERE file_path = ?", [rel]).fetchone()[0] == \
        hashlib.sha256(data).hexdigest()


# --- bad input ---------------------------------------------------------------------------------------------


def _orders_with(change) -> list:
    orders = _example("shopify/orders/2024-06-03.jsonl")
    for o in orders:
        o["id"] += 7000
    return change(orders)


def _drop_currency(orders):
    del orders[1]["currency"]
    return orders


def _set(i, key, value):
    def change(records):
        records[i][key] = value
        return records
    return change


def _set_nested_quantity(orders):
    orders[0]["line_items"][1]["quantity"] = "1"
    return orders


def _weather_mismatch():
    data = json.loads((ACME_EXAMPLE / "weather/daily/US-CA/2024-06.json").read_text())
    data["daily"]["temperature_2m_max"] = data["daily"]["temperature_2m_max"][:-1]
    return json.dumps(data)


BAD_FILES = [
    # (id, source, stream, relative file, content builder, expected line, expected field)
    ("unparseable_line", "shopify", "orders", "shopify/orders/bad.jsonl",
     lambda: _orders_with(lambda o: [o[0], '{"id": 5712340003, "created_at": ']), 2, None),
    ("missing_field", "shopify", "orders", "shopify/orders/bad.jsonl",
     lambda: _orders_with(_drop_currency), 2, "currency"),
    ("wrong_type", "shopify", "orders", "shopify/orders/bad.jsonl",
     lambda: _orders_with(_set(0, "id", "5712347001")), 1, "id"),
    ("wrong_nested_type", "shopify", "orders", "shopify/orders/bad.jsonl",
     lambda: _orders_with(_set_nested_quantity), 1, "line_items.1.quantity"),
    ("meta_spend_not_a_string", "meta_ads", "ads_insights_region", "meta_ads/ads_insights_region/bad.jsonl",
     lambda: _set(0, "spend", 412.37)(_example("meta_ads/ads_insights_region/2024-06-03.jsonl")), 1, "spend"),
    ("unknown_meta_region", "meta_ads", "ads_insights_region", "meta_ads/ads_insights_region/bad.jsonl",
     lambda: _set(1, "region", "Narnia")(_example("meta_ads/ads_insights_region/2024-06-03.jsonl")),
     2, "region"),
    ("unknown_google_geo", "google_ads", "campaign_geo", "google_ads/campaign_geo/bad.jsonl",
     lambda: _set(0, "segments.geo_target_region", "geoTargetConstants/99999")(
         _example("google_ads/campaign_geo/2024-06-03.jsonl")), 1, "segments.geo_target_region"),
    ("unknown_weather_folder", "weather", "daily", "weather/daily/US-ZZ/2024-06.json",
     lambda: (ACME_EXAMPLE / "weather/daily/US-CA/2024-06.json").read_text(), None, "geo_id"),
    ("weather_arrays_mismatch", "weather", "daily", "weather/daily/US-CA/2024-07.json",
     _weather_mismatch, 1, "daily.temperature_2m_max"),
    ("csv_missing_column", "experiments", "lift_tests", "experiments/lift_tests/bad.csv",
     lambda: "channel,geo_id,start_date,end_date,spend_delta,kpi_delta\nmeta,US-CA,2024-01-01,2024-01-28,1,2\n",
     1, "kpi_delta_sd"),
    ("lift_test_unknown_geo", "experiments", "lift_tests", "experiments/lift_tests/bad.csv",
     lambda: "channel,geo_id,start_date,end_date,spend_delta,kpi_delta,kpi_delta_sd\n"
             "meta,US-CA,2024-01-01,2024-01-28,1,2,1\nmeta,US-XX,2024-01-01,2024-01-28,1,2,1\n", 3, "geo_id"),
    ("csv_not_a_number", "aggregated", "mmm_input", "aggregated/mmm_input/bad.csv",
     lambda: "date,geo_id,revenue,spend_meta\n2024-05-06,US-CA,100,5\n2024-05-13,US-CA,100,five\n",
     3, "spend_meta"),
]


@pytest.mark.parametrize("case", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_file_is_quarantined_whole_and_the_rest_loads(landing, con, case):
    _id, source, stream, rel, build, line, fld = case
    content = build()
    path = landing / TENANT / rel
    if isinstance(content, list):
        _write_jsonl(path, content)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    report = ingest_tenant(con, landing, TENANT)

    rows = _quarantine_rows(con, rel)
    assert len(rows) == 1
    got_line, got_field, reason, digest = rows[0]
    assert (got_line, got_field) == (line, fld), reason
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    table = f"{source}__{stream}"
    assert _raw_count(con, table, rel) == 0
    # the example's own file of the same stream, and every other stream, still loaded
    assert report.files_loaded == len(STREAMS)
    assert report.stream(source, stream).files_quarantined == 1
    assert _raw_count(con, table) == _expected_rows(ACME_EXAMPLE, next(
        s for s in STREAMS if (s.source, s.stream) == (source, stream)))

    # copied (not moved) next to a reason file
    copy = landing / TENANT / "_quarantine" / source / stream / rel.split("/", 2)[2]
    assert path.exists() and copy.read_bytes() == path.read_bytes()
    why = json.loads(copy.with_name(copy.name + ".reason.json").read_text())
    assert why["file"] == rel and why["problems"][0]["line"] == line and why["problems"][0]["field"] == fld

    summary = quarantine_summary(con, TENANT, source, stream)
    assert [(q["file_path"], q["line"], q["field"]) for q in summary] == [(rel, line, fld)]

    # a known bad file is not quarantined again
    again = ingest_stream(con, landing, TENANT, source, stream)
    assert again.files_quarantined == 0 and len(_quarantine_rows(con, rel)) == 1


def test_reason_names_file_line_and_field(landing, con):
    orders = _orders_with(_set(0, "total_price", "seventy"))
    _write_jsonl(landing / TENANT / "shopify/orders/bad.jsonl", orders)
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    text = report.quarantined[0].describe()
    assert text.startswith("shopify/orders/bad.jsonl line 1 field total_price: ")
    assert "'seventy'" in text


def test_corrupt_gzip_is_quarantined(landing, con):
    path = landing / TENANT / "shopify/orders/broken.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"id": 1}\n')[:-6])
    ingest_stream(con, landing, TENANT, "shopify", "orders")
    (line, fld, reason, _), = _quarantine_rows(con, "shopify/orders/broken.jsonl.gz")
    assert (line, fld) == (None, None) and "gzip" in reason


def test_bad_row_count_reports_all_problems(landing, con):
    orders = _orders_with(lambda o: o)
    orders[0]["id"] = "x"
    orders[1]["id"] = "y"
    _write_jsonl(landing / TENANT / "shopify/orders/bad.jsonl", orders)
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert report.quarantined[0].problems_total == 2
    assert "and 1 more" in report.quarantined[0].describe()


# --- names, paths, tenants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["../acme", "acme/../x", "Acme", "", "a" * 64, "-acme", "acme\n"])
def test_invalid_tenant_ids_are_refused(landing, con, tenant):
    with pytest.raises(InvalidTenantId):
        ingest_tenant(con, landing, tenant)
    with pytest.raises(InvalidTenantId):
        ingest_stream(con, landing, tenant, "shopify", "orders")
    with pytest.raises(InvalidTenantId):
        pending_files(None, landing, tenant)


def test_link_leading_outside_the_tenant_is_refused_unread(landing, con, tmp_path):
    outside = tmp_path / "secret.jsonl"
    _write_jsonl(outside, _example("shopify/orders/2024-06-03.jsonl"))
    link = landing / TENANT / "shopify/orders/escape.jsonl"
    os.symlink(outside, link)
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    rel = "shopify/orders/escape.jsonl"
    (line, fld, reason, digest), = _quarantine_rows(con, rel)
    assert "outside the tenant folder" in reason and digest is None
    assert _raw_count(con, "shopify__orders", rel) == 0
    assert not (landing / TENANT / "_quarantine/shopify/orders/escape.jsonl").exists()
    assert report.files_loaded == 1  # the example file beside it
    assert rel not in [r for r, _ in landing_files(landing, TENANT)]
    assert (rel, None) in pending_files(None, landing, TENANT)
    again = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert again.files_quarantined == 0 and len(_quarantine_rows(con, rel)) == 1
    assert (rel, None) not in pending_files(con, landing, TENANT)


def test_odd_file_names_and_types_are_refused(landing, con):
    odd = landing / TENANT / "shopify/orders/we ird;rm.jsonl"
    _write_jsonl(odd, _orders_with(lambda o: o))
    txt = landing / TENANT / "shopify/orders/notes.txt"
    txt.write_text("hello\n")
    (landing / TENANT / "shopify/orders/.partial.jsonl").write_text("{")  # hidden: an upload in progress
    report = ingest_stream(con, landing, TENANT, "shopify", "orders")
    reasons = {q.file_path: q.reason for q in report.quarantined}
    assert set(reasons) == {"shopify/orders/we ird;rm.jsonl", "shopify/orders/notes.txt"}
    assert "characters outside" in reasons["shopify/orders/we ird;rm.jsonl"]
    assert "unexpected file type" in reasons["shopify/orders/notes.txt"]
    assert report.files_loaded == 1 and report.files_seen == 3
    assert {q.file_hash for q in report.quarantined} == {None}  # refused unread
    # the same bytes under a proper name still load: a refusal by name does not blacklist the content
    shutil.copyfile(odd, odd.with_name("renamed.jsonl"))
    again = ingest_stream(con, landing, TENANT, "shopify", "orders")
    assert (again.files_loaded, again.files_quarantined) == (1, 0)


def test_list_tenants_splits_valid_and_rejected(wv_env):
    root = wv_env["landing"]
    for name in ["acme", "beta-shop_2", "Bad Name", "UPPER", ".hidden"]:
        (root / name).mkdir()
    (root / "demo.truth.json").write_text("{}")
    assert list_tenants(root) == (["acme", "beta-shop_2"], ["Bad Name", "UPPER"])


def test_pending_files_lists_only_new_files(landing, con):
    everything = pending_files(None, landing, TENANT)
    assert len(everything) == len(STREAMS)
    rel, digest = everything[0]
    assert digest == hashlib.sha256((landing / TENANT / rel).read_bytes()).hexdigest()
    ingest_tenant(con, landing, TENANT)
    assert pending_files(con, landing, TENANT) == []
    new = _write_jsonl(landing / TENANT / "klaviyo/campaigns/2024-06-10.jsonl",
                       _example("klaviyo/campaigns/2024-06-03.jsonl"))
    new.write_text(new.read_text() + "\n")  # different bytes from the loaded file
    assert pending_files(con, landing, TENANT) == [
        ("klaviyo/campaigns/2024-06-10.jsonl", hashlib.sha256(new.read_bytes()).hexdigest())
    ]


# --- tenant.yaml, warehouse ----------------------------------------------------------------------------------


def test_channel_rules_follow_tenant_yaml(landing, con):
    yaml_path = landing / TENANT / "tenant.yaml"
    yaml_path.write_text(yaml_path.read_text() + (
        "channels:\n"
        "  - {name: meta_prospecting, platform: meta_ads, campaign_name: '(?i)prospect'}\n"
        "  - {name: google_brand, platform: google_ads, campaign_name: '(?i)brand'}\n"
    ))
    report = ingest_tenant(con, landing, TENANT)
    assert report.channel_rules == 2
    rows = con.execute("SELECT priority, channel, platform, campaign_name_regex FROM ops.tenant_channel_rules "
                       "WHERE tenant_id = ? ORDER BY priority", [TENANT]).fetchall()
    assert rows == [(0, "meta_prospecting", "meta_ads", "(?i)prospect"),
                    (1, "google_brand", "google_ads", "(?i)brand")]
    ingest_tenant(con, landing, TENANT)
    assert con.execute("SELECT count(*) FROM ops.tenant_channel_rules").fetchone()[0] == 2


def test_bad_tenant_yaml_does_not_stop_the_data(landing, con):
    (landing / TENANT / "tenant.yaml").write_text("grain: {product: everything}\n")
    report = ingest_tenant(con, landing, TENANT)
    assert report.config_error and "grain.product" in report.config_error
    assert report.channel_rules is None
    assert report.files_loaded == len(STREAMS)


def test_transaction_rolls_back_everything_on_error(con):
    con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("crash mid-file")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with transaction(con):
        con.execute("INSERT INTO t VALUES (2)")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_exported_json_schemas_are_current():
    assert stale_schemas() == [], "run: .venv/bin/python -m weathervane.landing.schemas"


def test_columnar_batch_path_loads_the_same_rows(landing, con, monkeypatch):
    # Large files go through a columnar batch instead of list parameters; both must write the same rows.
    import weathervane.landing.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "SMALL_BATCH", 0)
    ingest_tenant(con, landing, TENANT)
    rows = con.execute("SELECT source_line, record::VARCHAR FROM raw.shopify__orders ORDER BY source_line").fetchall()
    assert [ln for ln, _ in rows] == [1, 2]
    assert [json.loads(r) for _, r in rows] == _example("shopify/orders/2024-06-03.jsonl")
    weather = con.execute("SELECT geo_id FROM raw.weather__forecast").fetchall()
    assert weather == [("US-CA",)]
