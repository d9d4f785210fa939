"""The ground-truth simulator writes contract-shaped files whose contents agree with the truth it reports."""
from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from weathervane import config
from weathervane.simulate import SCENARIOS, load_truth, main, simulate_tenant
from weathervane.simulate.geos import GEOS

SMALL = {"days": 120, "n_geos": 3}
META_REGIONS = {g.meta_region_name: g.geo_id for g in GEOS}
CRITERIA = {f"geoTargetConstants/{g.google_criterion_id}": g.geo_id for g in GEOS}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _jsonl(root: Path, pattern: str) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(root.glob(pattern)):
        for line in path.read_text(encoding="utf-8").splitlines():
            out.append((path, json.loads(line)))
    return out


def _latest_orders(root: Path) -> dict[int, dict]:
    """Supersede order versions by primary key: latest updated_at wins."""
    latest: dict[int, dict] = {}
    for _, rec in _jsonl(root, "shopify/orders/*.jsonl"):
        cur = latest.get(rec["id"])
        if cur is None or rec["updated_at"] > cur["updated_at"]:
            latest[rec["id"]] = rec
    return latest


def _is_sale(order: dict) -> bool:
    return not order["test"] and order["cancelled_at"] is None


def test_same_seed_gives_identical_files_and_another_seed_does_not(wv_env):
    landing = wv_env["landing"]
    t1 = simulate_tenant("shop-a", landing / "one", seed=3, **SMALL)
    t2 = simulate_tenant("shop-a", landing / "two", seed=3, **SMALL)
    t3 = simulate_tenant("shop-a", landing / "three", seed=4, **SMALL)
    h1, h2, h3 = (_hashes(landing / d / "shop-a") for d in ("one", "two", "three"))
    assert h1 == h2
    assert (landing / "one" / "shop-a.truth.json").read_bytes() == (landing / "two" / "shop-a.truth.json").read_bytes()
    assert t1 == t2
    changed = [f for f in h1 if h3.get(f) != h1[f]]
    assert any(f.startswith("shopify/orders/") for f in changed)
    assert any(f.startswith("weather/daily/") for f in changed)
    assert t3.orders.net_revenue_valid != t1.orders.net_revenue_valid
    # re-simulating into the same place replaces the tenant with the same bytes
    simulate_tenant("shop-a", landing / "one", seed=3, **SMALL)
    assert _hashes(landing / "one" / "shop-a") == h1


def test_every_stream_follows_the_contract(wv_env):
    landing = wv_env["landing"]
    truth = simulate_tenant("acme-sim", landing, **SMALL)
    root = landing / "acme-sim"
    geo_ids = [g.geo_id for g in truth.geos]

    cfg = config.load_tenant_config(landing, "acme-sim")
    assert cfg.timezone == "America/New_York"
    assert cfg.grain is None and cfg.model is None  # the sniff's model spec decides the grain
    assert cfg.autopilot.approvers

    for stream in ("shopify/orders", "shopify/products", "shopify/price_rules", "shopify/discount_codes",
                   "meta_ads/ads_insights_region", "google_ads/campaign_geo", "klaviyo/campaigns",
                   "klaviyo/campaign_values", "autopilot/deployments"):
        assert list((root / stream).glob("*.jsonl")), stream

    orders = _jsonl(root, "shopify/orders/*.jsonl")
    for _, o in orders[:500]:
        assert isinstance(o["id"], int) and isinstance(o["test"], bool)
        for key in ("created_at", "updated_at", "currency", "financial_status", "total_price", "subtotal_price",
                    "total_discounts", "discount_codes", "discount_applications", "line_items", "billing_address"):
            assert key in o
        assert o["created_at"][-6:] in ("-05:00", "-04:00")
        assert isinstance(o["line_items"], list) and o["line_items"]
        for li in o["line_items"]:
            assert {"id", "product_id", "variant_id", "sku", "quantity", "price", "total_discount",
                    "discount_allocations"} <= set(li)
        address = o["shipping_address"] or o["billing_address"]
        assert f"US-{address['province_code']}" in geo_ids and address["country_code"] == "US"
    # supersession is exercised: the same order ids arrive again in a later extract with a later updated_at
    versions = defaultdict(list)
    for path, o in orders:
        versions[o["id"]].append((path.name, o["updated_at"], o["cancelled_at"]))
    repeated = [v for v in versions.values() if len(v) > 1]
    assert repeated and all(v[0][0] != v[1][0] and v[1][1] > v[0][1] and v[1][2] for v in repeated)

    products = _jsonl(root, "shopify/products/*.jsonl")
    assert len({p["product_type"] for _, p in products}) >= 3
    assert any(v["compare_at_price"] is not None for _, p in products for v in p["variants"])
    assert all("compare_at_price" in v and isinstance(v["price"], str) for _, p in products for v in p["variants"])

    rules = {r["id"]: r for _, r in _jsonl(root, "shopify/price_rules/*.jsonl")}
    assert rules and all(r["value"].startswith("-") and float(r["value"]) < 0 for r in rules.values())
    codes = [c for _, c in _jsonl(root, "shopify/discount_codes/*.jsonl")]
    assert codes and all(c["price_rule_id"] in rules for c in codes)

    meta = [m for _, m in _jsonl(root, "meta_ads/ads_insights_region/*.jsonl")]
    assert {m["region"] for m in meta} == {g.meta_region_name for g in truth.geos}
    assert all(isinstance(m["spend"], str) and isinstance(m["impressions"], str) for m in meta)
    assert {m["campaign_name"].split(" - ")[0] for m in meta} == {"Prospecting", "Retargeting"}
    assert len({m["adset_id"] for m in meta}) >= 2

    google = [g for _, g in _jsonl(root, "google_ads/campaign_geo/*.jsonl")]
    keys = {"segments.date", "campaign.id", "campaign.name", "campaign.advertising_channel_type",
            "segments.geo_target_region", "metrics.cost_micros", "metrics.impressions", "metrics.clicks",
            "metrics.conversions", "metrics.conversions_value"}
    assert all(set(g) == keys for g in google)
    assert all(isinstance(g["metrics.cost_micros"], str) and g["metrics.cost_micros"].isdigit() for g in google)
    assert {g["segments.geo_target_region"] for g in google} <= set(CRITERIA)
    assert {g["campaign.advertising_channel_type"] for g in google} >= {"SEARCH", "SHOPPING"}

    campaigns = {c["id"]: c for _, c in _jsonl(root, "klaviyo/campaigns/*.jsonl")}
    values = [v for _, v in _jsonl(root, "klaviyo/campaign_values/*.jsonl")]
    assert campaigns and all(c["type"] == "campaign" and c["attributes"]["channel"] in ("email", "sms")
                             for c in campaigns.values())
    assert {v["groupings"]["campaign_id"] for v in values} == set(campaigns)

    end = date.fromisoformat(truth.end_date)
    for gid in geo_ids:
        observed = []
        for path in sorted((root / "weather" / "daily" / gid).glob("*.json")):
            daily = json.loads(path.read_text(encoding="utf-8"))["daily"]
            assert len({len(v) for v in daily.values()}) == 1
            observed += daily["time"]
        assert observed[0] == truth.start_date and observed[-1] == truth.end_date and len(observed) == truth.days
        (forecast,) = (root / "weather" / "forecast" / gid).glob("*.json")
        times = json.loads(forecast.read_text(encoding="utf-8"))["daily"]["time"]
        assert times[0] == (end + timedelta(days=1)).isoformat() and len(times) == 28

    (dep,) = [d for _, d in _jsonl(root, "autopilot/deployments/*.jsonl")]
    assert dep["channels"] == ["meta"] and set(dep["geo_ids"]) <= set(geo_ids) and dep["plan_id"] is None
    (lift_csv,) = (root / "experiments" / "lift_tests").glob("*.csv")
    (row,) = list(csv.DictReader(lift_csv.open()))
    assert row["geo_id"] == truth.lift_test.geo_id and float(row["kpi_delta"]) == truth.lift_test.reported_kpi_delta
    assert not (root / f"{truth.tenant_id}.truth.json").exists() and (landing / "acme-sim.truth.json").exists()


def test_order_discount_arithmetic_is_consistent(wv_env):
    root = wv_env["landing"] / "disc"
    simulate_tenant("disc", wv_env["landing"], seed=1, **SMALL)
    kinds = set()
    for _, o in _jsonl(root, "shopify/orders/*.jsonl"):
        gross = sum(round(float(li["price"]) * li["quantity"], 2) for li in o["line_items"])
        alloc_by_app = defaultdict(float)
        line_disc = 0.0
        for li in o["line_items"]:
            allocs = sum(float(a["amount"]) for a in li["discount_allocations"])
            assert math.isclose(float(li["total_discount"]), allocs, abs_tol=0.005)
            line_disc += allocs
            for a in li["discount_allocations"]:
                assert 0 <= a["discount_application_index"] < len(o["discount_applications"])
                alloc_by_app[a["discount_application_index"]] += float(a["amount"])
        assert math.isclose(float(o["total_discounts"]), line_disc, abs_tol=0.005)
        assert math.isclose(float(o["total_line_items_price"]), gross, abs_tol=0.005)
        assert math.isclose(float(o["subtotal_price"]), gross - line_disc, abs_tol=0.005)
        for code in o["discount_codes"]:
            (idx,) = [i for i, app in enumerate(o["discount_applications"]) if app.get("code") == code["code"]]
            assert math.isclose(float(code["amount"]), alloc_by_app[idx], abs_tol=0.005)
        for i, app in enumerate(o["discount_applications"]):
            kinds.add(app["type"])
            assert alloc_by_app[i] > 0  # an application that discounted nothing is not recorded
    assert kinds == {"discount_code", "automatic"}


def test_truth_totals_equal_what_the_files_hold(wv_env):
    landing = wv_env["landing"]
    truth = simulate_tenant("totals", landing, seed=2, **SMALL)
    assert load_truth(landing / "totals.truth.json") == truth
    root = landing / "totals"

    spend = defaultdict(float)
    daily = defaultdict(float)
    for _, m in _jsonl(root, "meta_ads/ads_insights_region/*.jsonl"):
        spend[("meta", META_REGIONS[m["region"]])] += float(m["spend"])
        daily[("meta", META_REGIONS[m["region"]], m["date_start"])] += float(m["spend"])
    for _, g in _jsonl(root, "google_ads/campaign_geo/*.jsonl"):
        channel = "google_" + g["campaign.advertising_channel_type"].lower()
        geo = CRITERIA[g["segments.geo_target_region"]]
        spend[(channel, geo)] += int(g["metrics.cost_micros"]) / 1e6
        daily[(channel, geo, g["segments.date"])] += int(g["metrics.cost_micros"]) / 1e6
    for name, ch in truth.channels.items():
        for geo, value in ch.spend_by_geo.items():
            assert spend[(name, geo)] == pytest.approx(value, abs=0.01)
            series = truth.daily.spend[name][geo]
            assert sum(series) == pytest.approx(value, abs=0.05)
            for i in (0, 37, len(series) - 1):
                assert daily[(name, geo, truth.daily.dates[i])] == pytest.approx(series[i], abs=0.005)
        assert ch.roas == pytest.approx(ch.contribution / ch.spend, rel=1e-5)
        assert ch.contribution == pytest.approx(sum(sum(v) for v in truth.daily.contribution[name].values()), rel=1e-4)
        for w, gamma in ch.gamma.items():
            assert ch.multiplier_per_sd[w] == pytest.approx(math.exp(gamma), rel=1e-6)
    assert truth.channels["meta"].gamma["temperature_2m_mean"] > 0
    assert truth.channels["google_shopping"].gamma["precipitation_sum"] < 0
    assert set(truth.channels["google_search"].gamma.values()) == {0.0}

    latest = _latest_orders(root)
    sales = [o for o in latest.values() if _is_sale(o)]
    assert len(latest) == truth.orders.written
    assert sum(o["test"] for o in latest.values()) == truth.orders.test
    assert sum(o["cancelled_at"] is not None for o in latest.values()) == truth.orders.cancelled
    assert len(sales) == truth.orders.valid
    net = sum(float(o["subtotal_price"]) for o in sales)
    assert net == pytest.approx(truth.orders.net_revenue_valid, abs=0.05)
    by_geo = defaultdict(float)
    for o in sales:
        by_geo["US-" + (o["shipping_address"] or o["billing_address"])["province_code"]] += float(o["total_price"])
    for g in truth.geos:
        assert by_geo[g.geo_id] == pytest.approx(g.net_revenue_valid_orders, abs=0.05)
    # orders are drawn around the expected revenue: within Poisson noise of mu
    assert net == pytest.approx(truth.expected_revenue_total, rel=0.05)
    assert truth.expected_revenue_total == pytest.approx(
        truth.baseline_total + truth.promo_lift_total + truth.lifecycle_lift_total + truth.media_total, rel=1e-6)

    rules = {r["id"]: r for _, r in _jsonl(root, "shopify/price_rules/*.jsonl")}
    coded = [p for p in truth.promotions if p.source == "shopify_price_rule"]
    assert {p.price_rule_id for p in coded} == set(rules)
    for p in coded:
        r = rules[p.price_rule_id]
        assert -float(r["value"]) == p.depth_pct
        assert (r["starts_at"][:10], r["ends_at"][:10]) == (p.start_date, p.end_date)
    autos = {a["title"] for o in latest.values() for a in o["discount_applications"] if a["type"] == "automatic"}
    assert autos == {p.title for p in truth.promotions if p.source == "shopify_automatic"}
    assert {p.klaviyo_campaign_id for p in truth.promotions if p.source == "klaviyo_campaign"} == {
        c["id"] for _, c in _jsonl(root, "klaviyo/campaigns/*.jsonl")}

    # the standardized weather in the truth is computed from the values written
    for g in truth.geos:
        temps = []
        for path in sorted((root / "weather" / "daily" / g.geo_id).glob("*.json")):
            temps += json.loads(path.read_text(encoding="utf-8"))["daily"]["temperature_2m_mean"]
        temps = np.array(temps)
        assert temps.mean() == pytest.approx(g.weather_mean["temperature_2m_mean"], abs=1e-5)
        z = (temps - temps.mean()) / temps.std(ddof=1)
        assert np.allclose(z, truth.daily.z["temperature_2m_mean"][g.geo_id], atol=1e-4)


def _promo_temperature_correlation(truth) -> float:
    n = truth.days
    active = np.zeros(n)
    start = date.fromisoformat(truth.start_date)
    for p in truth.promotions:
        if p.source in ("shopify_price_rule", "shopify_automatic"):
            a = (date.fromisoformat(p.start_date) - start).days
            b = (date.fromisoformat(p.end_date) - start).days
            active[a:b + 1] = 1
    temp = np.mean([truth.daily.z["temperature_2m_mean"][g.geo_id] for g in truth.geos], axis=0)
    return float(np.corrcoef(active, temp)[0, 1])


def test_confounded_scenario_puts_promotions_in_warm_weeks(wv_env):
    landing = wv_env["landing"]
    kw = {"days": 365, "n_geos": 2, "orders_per_geo_day": 3.0}
    std = simulate_tenant("std", landing, "standard", seed=5, **kw)
    conf = simulate_tenant("conf", landing, "promo_weather_confounded", seed=5, **kw)
    c_std, c_conf = _promo_temperature_correlation(std), _promo_temperature_correlation(conf)
    assert c_conf > 0.35, c_conf
    assert c_conf > c_std + 0.2, (c_std, c_conf)
    for name, ch in conf.channels.items():
        assert ch.gamma == std.channels[name].gamma


def test_bad_files_scenario_adds_exactly_the_listed_bad_files(wv_env):
    landing = wv_env["landing"]
    good = simulate_tenant("shop", landing / "good", "standard", seed=9, **SMALL)
    bad = simulate_tenant("shop", landing / "bad", "bad_files", seed=9, **SMALL)
    assert good.bad_files == []
    h_good, h_bad = _hashes(landing / "good" / "shop"), _hashes(landing / "bad" / "shop")
    listed = {b.file_path for b in bad.bad_files}
    assert set(h_bad) - set(h_good) == listed  # the good files are byte-identical to the standard scenario
    assert all(h_bad[f] == h for f, h in h_good.items())
    assert len(listed) == len(bad.bad_files) >= 6
    assert bad.channels["meta"].spend == good.channels["meta"].spend  # truth totals count only the good files

    root = landing / "bad" / "shop"
    fields = set()
    for b in bad.bad_files:
        lines = (root / b.file_path).read_text(encoding="utf-8").splitlines()
        fields.add(b.field)
        if b.field is None:
            with pytest.raises(json.JSONDecodeError):
                json.loads(lines[b.line - 1])
            continue
        rec = json.loads(lines[b.line - 1])
        if b.field == "id":
            assert "id" not in rec
        elif b.field == "line_items":
            assert not isinstance(rec["line_items"], list)
        elif b.field == "spend":
            with pytest.raises(ValueError):
                float(rec["spend"])
        elif b.field == "region":
            assert rec["region"] not in META_REGIONS
        elif b.field == "segments.geo_target_region":
            assert rec[b.field] not in CRITERIA
        elif b.field.startswith("daily."):
            daily = rec["daily"]
            assert len(daily[b.field.split(".", 1)[1]]) != len(daily["time"])
        else:
            pytest.fail(f"unexpected bad field {b.field}")
        assert all(json.loads(line) for i, line in enumerate(lines) if i != b.line - 1)  # the rest is well formed
    assert fields == {None, "id", "line_items", "spend", "region", "segments.geo_target_region",
                      "daily.temperature_2m_mean"}


def test_refuses_bad_arguments_and_foreign_folders(wv_env):
    landing = wv_env["landing"]
    with pytest.raises(config.InvalidTenantId):
        simulate_tenant("../escape", landing, **SMALL)
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate_tenant("ok", landing, scenario="sunny", **SMALL)
    with pytest.raises(ValueError, match="n_geos"):
        simulate_tenant("ok", landing, days=60, n_geos=7)
    (landing / "real" / "shopify").mkdir(parents=True)
    (landing / "real" / "shopify" / "keep.txt").write_text("a real tenant's file")
    with pytest.raises(FileExistsError):
        simulate_tenant("real", landing, days=60, n_geos=1)
    assert (landing / "real" / "shopify" / "keep.txt").exists()
    assert set(SCENARIOS) == {"standard", "promo_weather_confounded", "bad_files"}


def test_cli_writes_a_tenant_and_its_truth(wv_env, capsys):
    landing = wv_env["landing"]
    assert main(["--tenant", "cli", "--days", "60", "--geos", "2", "--seed", "4", "--scenario", "bad_files"]) == 0
    truth = load_truth(landing / "cli.truth.json")  # default output is the landing root
    assert (truth.days, truth.n_geos, truth.seed, truth.scenario) == (60, 2, 4, "bad_files")
    assert (landing / "cli" / truth.bad_files[0].file_path).exists()
    assert "cli" in capsys.readouterr().out
