"""`simulate_tenant`: a complete landing-zone tenant generated from a known data-generating process.

Daily, per geo g:
  z_w(g,t)        = (x_w(g,t) - mean_g x_w) / sd_g x_w over the observed history, w in {temperature, precipitation}
  media_c(g,t)    = beta_c * size_g * sat(adstock_c(spend_c(g,.))(t) / scale_c) * exp(sum_w gamma[c,w] z_w(g,t))
  baseline(g,t)   = b0_g * trend * yearly * weekday * holiday * exp(eta . z(g,t)) * demand shock
  mu(g,t)         = baseline * (1 + promo factor(t) + lifecycle factor(t)) + sum_c media_c(g,t)
Valid orders ~ Poisson(mu / E[net order value on day t]), so E[realized net revenue] = mu.
"""
from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from weathervane.config import validate_tenant_id
from weathervane.simulate import bad_files as bad
from weathervane.simulate import commerce
from weathervane.simulate.commerce import (
    CATEGORIES, Catalog, Promotion, build_catalog, day_pricing, expected_net_order_value, generate_orders,
    promo_factors, schedule_klaviyo, schedule_promotions,
)
from weathervane.simulate.geos import GeoSpec, first_geos
from weathervane.simulate.media import (
    CHANNELS, L_MAX, ChannelSpec, adstock, channel_weights, response_shape, simulate_spend, split_and_round,
)
from weathervane.simulate.truth import (
    WEATHER_VARIABLES, BadFile, ChannelTruth, DailyTruth, DeploymentTruth, GeoTruth, HorizonTruth, LiftTestTruth,
    OrderCounts, PromotionTruth, Truth, WorldTruth,
)
from weathervane.simulate.weather import date_range, month_slices, open_meteo_response, simulate_weather
from weathervane.simulate.worlds import World

SCENARIOS = ("standard", "promo_weather_confounded", "bad_files")
TIMEZONE = "America/New_York"
FORECAST_DAYS = 28
SPEND_TO_REVENUE = 0.11  # paid media budget as a share of expected revenue
BASELINE = {
    "trend_per_year": 0.12,  # log growth
    "yearly_amplitude": 0.15,
    "yearly_peak_doy": 330,
    "weekday": [0.96, 0.97, 0.98, 1.0, 1.04, 1.06, 0.99],  # Monday first
    "holiday_lift": 0.3,  # Black Friday and Cyber Monday
    "eta_temperature_2m_mean": 0.04,
    "eta_precipitation_sum": -0.05,
    "demand_shock_sd": 0.06,
}
DEPLOYMENT_MULTIPLIER = 1.4
DEPLOYMENT_DAYS = 56  # the deployment ends after eight weeks when the data runs that long (then it can be audited)
LIFT_TEST_MULTIPLIER = 1.5


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _round(x: float, nd: int = 2) -> float:
    return float(round(float(x), nd))


def _local_ts(d: date, clock: str = "00:00:00") -> str:
    h, m, s = (int(p) for p in clock.split(":"))
    return datetime(d.year, d.month, d.day, h, m, s, tzinfo=ZoneInfo(TIMEZONE)).isoformat()


def _holidays(dates: list[date]) -> np.ndarray:
    """Black Friday (day after the 4th Thursday of November) and Cyber Monday."""
    flags = np.zeros(len(dates))
    for i, d in enumerate(dates):
        if d.month == 11:
            first = date(d.year, 11, 1)
            thanksgiving = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
            if d in (thanksgiving + timedelta(days=1), thanksgiving + timedelta(days=4)):
                flags[i] = 1.0
        elif d.month == 12 and d.day == 2:
            first = date(d.year, 11, 1)
            thanksgiving = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
            if d == thanksgiving + timedelta(days=4):
                flags[i] = 1.0
    return flags


def _holiday_season(dates: list[date]) -> np.ndarray:
    """1.0 from a week before Black Friday to Christmas Eve: the peak season retail budgets and demand share."""
    flags = np.zeros(len(dates))
    for i, d in enumerate(dates):
        first = date(d.year, 11, 1)
        black_friday = first + timedelta(days=(3 - first.weekday()) % 7 + 22)
        if black_friday - timedelta(days=7) <= d <= date(d.year, 12, 24):
            flags[i] = 1.0
    return flags


def _geo_budget_options(world: World, dates: list[date], sizes: np.ndarray, z: dict, promos) -> dict:
    """simulate_spend options for the worlds whose geo budgets follow demand, revenue or promotions (worlds.py).

    Budgets from last month's revenue use the geo's expected organic revenue of the previous calendar month
    (its demand shape and the weather's effect on it), not the realised revenue: media is a fifth of revenue or
    less, so leaving out its feedback on next month's budget changes the pattern little and keeps the simulation
    one pass."""
    out: dict = {}
    if not (world.geo_paced or world.budget_from_revenue or world.promo_flight_channels or world.geo_parity):
        return out
    out["level_noise"] = not world.geo_parity
    eta_t, eta_p = (BASELINE["eta_temperature_2m_mean"], BASELINE["eta_precipitation_sum"]) \
        if world.baseline_weather else (0.0, 0.0)
    demand = _demand_shape(dates, world)[None, :] * np.exp(eta_t * z["temperature_2m_mean"]
                                                          + eta_p * z["precipitation_sum"])  # [g, t]
    pattern = np.ones_like(demand)
    if world.geo_paced:  # the geo's demand over the last week, as pacing reacts to it
        kernel = np.ones(7) / 7
        smooth = np.array([np.convolve(d, kernel, mode="full")[:len(d)] for d in demand])
        smooth[:, :6] = demand[:, :6]
        paced = smooth ** world.pacing_exponent
        pattern = pattern * paced / paced.mean(axis=1, keepdims=True)
    if world.budget_from_revenue:
        months = np.array([d.year * 12 + d.month for d in dates])
        monthly = np.ones_like(demand)
        first = months[0]
        for m in np.unique(months):
            source = months == (m - 1 if m > first else m)
            monthly[:, months == m] = demand[:, source].mean(axis=1, keepdims=True)
        pattern = pattern * monthly / monthly.mean(axis=1, keepdims=True)
    if world.geo_paced or world.budget_from_revenue:
        out["geo_pattern"] = pattern
    if world.promo_flight_channels:
        on = np.zeros(len(dates), dtype=bool)
        for p in promos:
            on[p.start:p.end + 1] = True
        out["promo_days"], out["promo_channels"] = on, frozenset(world.promo_flight_channels)
    return out


def _demand_shape(dates: list[date], world: World) -> np.ndarray:
    """The organic baseline's smooth shape (trend, yearly cycle, peak season), mean 1: what paced budgets follow."""
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    tt = (np.array([d.toordinal() for d in dates]) - dates[0].toordinal()) / 365.25
    shape = (np.exp(BASELINE["trend_per_year"] * tt)
             * (1 + BASELINE["yearly_amplitude"] * np.cos(2 * np.pi * (doy - BASELINE["yearly_peak_doy"]) / 365.25))
             * (1 + world.holiday_demand * _holiday_season(dates)))
    return shape / shape.mean()


class _Writer:
    """Writes files under the tenant folder and counts them per stream."""

    def __init__(self, root: Path):
        self.root = root
        self.counts: dict[str, int] = {}

    def _path(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = rel.split("/")
        key = "/".join(parts[:2])
        self.counts[key] = self.counts.get(key, 0) + 1
        return path

    def lines(self, rel: str, lines: list[str]) -> None:
        self._path(rel).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def text(self, rel: str, text: str) -> None:
        self._path(rel).write_text(text, encoding="utf-8")


def simulate_tenant(
    tenant_id: str,
    out_dir: Path,
    scenario: str = "standard",
    seed: int = 0,
    *,
    days: int = 730,
    n_geos: int = 6,
    orders_per_geo_day: float = 10.0,
    start: date = date(2024, 1, 1),
    channels: tuple[str, ...] | None = None,
    grain: tuple[str, str] | None = None,
    media_share: float = SPEND_TO_REVENUE,
    lift_test_channels: tuple[str, ...] = ("meta",),
    world: World | None = None,
) -> Truth:
    """Write `<out_dir>/<tenant_id>/` per the landing contract and `<out_dir>/<tenant_id>.truth.json`.

    Same arguments give byte-identical files. An existing tenant folder is replaced only when it was simulated
    before (its truth file sits beside it); any other existing folder is left alone and an error is raised.
    `channels` picks a subset of meta, google_search, google_shopping, google_performance_max (default: all).
    `grain` is a (product, geo) modelling grain pinned in tenant.yaml; None (the default) leaves the grain to the
    model spec the sniff decides from the data. `media_share` is the paid media
    budget as a share of expected revenue (DTC brands spend roughly 0.05 to 0.3). `lift_test_channels`: the
    channels that ran a four-week geo lift test (one each, staggered in time and geo; meta's comes first); an
    empty tuple: none. `world` turns on data-generating switches the model is not told about (see worlds.py);
    None is the standard world.
    """
    tenant_id = validate_tenant_id(tenant_id)
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    if days < 60:
        raise ValueError(f"days must be at least 60 (promotions, a lift test and a deployment must fit), got {days}")
    if orders_per_geo_day <= 0:
        raise ValueError("orders_per_geo_day must be positive")
    if not 0 < media_share < 0.5:
        raise ValueError(f"media_share must be in (0, 0.5), got {media_share}")
    specs = CHANNELS if channels is None else tuple(c for c in CHANNELS if c.name in set(channels))
    if channels is not None and len(specs) != len(set(channels)):
        unknown = sorted(set(channels) - {c.name for c in CHANNELS})
        raise ValueError(f"unknown channels {unknown}: choose from {[c.name for c in CHANNELS]}")
    world = world or World()
    specs = tuple(world.channel(s) for s in specs)
    lift_channels = ([c for c in lift_test_channels if c in {s.name for s in specs}] or [specs[0].name]
                     if lift_test_channels else [])
    geos = first_geos(n_geos)
    out_dir = Path(out_dir)
    root = out_dir / tenant_id
    truth_path = out_dir / f"{tenant_id}.truth.json"
    if root.exists() and any(root.iterdir()):
        if not truth_path.exists():
            raise FileExistsError(f"{root} exists and was not written by the simulator; not overwriting it")
        shutil.rmtree(root)

    ss = np.random.SeedSequence([seed, SCENARIOS.index(scenario) if scenario != "bad_files" else 0])
    seeds = ss.spawn(10)
    r_spend, r_split, r_promo, r_klaviyo, r_catalog, r_baseline, r_orders, r_misc, r_tests = (
        np.random.default_rng(s) for s in seeds[1:]
    )

    n = days
    dates = date_range(start, n)
    all_dates = date_range(start, n + FORECAST_DAYS)
    sizes = np.array([g.size for g in geos])
    sizes = sizes / sizes.mean()

    # weather and its within-geo standardization over the observed history
    weather = [simulate_weather(g, all_dates, np.random.default_rng(s))
               for g, s in zip(geos, seeds[0].spawn(len(geos)))]
    raw = {
        "temperature_2m_mean": np.array([w.temperature_2m_mean[:n] for w in weather]),
        "precipitation_sum": np.array([w.precipitation_sum[:n] for w in weather]),
    }
    w_mean = {k: v.mean(axis=1) for k, v in raw.items()}
    w_sd = {k: v.std(axis=1, ddof=1) for k, v in raw.items()}
    z = {k: (raw[k] - w_mean[k][:, None]) / w_sd[k][:, None] for k in WEATHER_VARIABLES}

    # shop, promotions and sends
    catalog = build_catalog(r_catalog)
    warmth = None
    if scenario == "promo_weather_confounded":
        national = z["temperature_2m_mean"].mean(axis=0)
        warmth = np.convolve(national, np.ones(7) / 7, mode="same")
    promos = schedule_promotions(dates, r_promo, warmth)
    sends = schedule_klaviyo(dates, promos, r_klaviyo)
    cat_share = catalog.category_gross_share()
    factors = promo_factors(promos + sends, n, cat_share)
    promo_f = sum((factors[p.promotion_id] for p in promos), np.zeros(n))
    life_f = sum((factors[p.promotion_id] for p in sends), np.zeros(n))
    pricing = day_pricing(catalog, promos, n)
    env = expected_net_order_value(catalog, pricing)
    no_promo_env = float(expected_net_order_value(catalog, day_pricing(catalog, [], 1))[0])
    target = orders_per_geo_day * sizes * no_promo_env  # mean expected revenue per geo-day

    # paid media: planned spend, then the deployment and the lift test, then what the platforms report
    season = _holiday_season(dates)
    pacing = {}
    if world.paced_channels or world.q4_budget_bump:
        pacing = dict(paced=frozenset(world.paced_channels), pacing_exponent=world.pacing_exponent,
                      demand=_demand_shape(dates, world), budget_bump=1 + world.q4_budget_bump * season)
    pacing.update(_geo_budget_options(world, dates, sizes, z, promos))
    planned = simulate_spend(specs, sizes, media_share * target, n, r_spend, **pacing)
    multiplier = np.ones_like(planned)
    ci_meta = next((i for i, c in enumerate(specs) if c.name == "meta"), 0)
    deploy_start = int(0.75 * n)
    deploy_start += (7 - dates[deploy_start].weekday()) % 7  # go live on a Monday
    deploy_start = min(deploy_start, n - 7)
    deploy_end = deploy_start + DEPLOYMENT_DAYS if deploy_start + DEPLOYMENT_DAYS < n else n  # exclusive
    order = r_misc.permutation(len(geos))
    treated = sorted(int(i) for i in order[: max(1, len(geos) // 3)])
    multiplier[ci_meta, treated, deploy_start:deploy_end] *= DEPLOYMENT_MULTIPLIER
    # lift tests: spend x LIFT_TEST_MULTIPLIER for four weeks in one geo, one test per listed channel, staggered
    lift_plan = []  # (channel index, geo index, first day, last day)
    for j, name in enumerate(lift_channels):
        ci = next(i for i, c in enumerate(specs) if c.name == name)
        gi = int(order[-1 - j % len(geos)]) if len(geos) > 1 else 0
        l_start = int((0.25 + 0.1 * j) * n)
        l_start += (7 - dates[l_start].weekday()) % 7
        l_end = min(l_start + 27, deploy_start - 1)
        lift_plan.append((ci, gi, l_start, l_end))
        multiplier[ci, gi, l_start:l_end + 1] *= LIFT_TEST_MULTIPLIER
    parts = [split_and_round(planned[ci] * multiplier[ci], spec.campaigns, r_split) for ci, spec in enumerate(specs)]
    spend = np.array([p.sum(axis=0) for p in parts])  # [c, g, t], exactly what the files sum to

    # media effect, calibrated so each channel's overall ROAS lands near its target
    zt, zp = z["temperature_2m_mean"], z["precipitation_sum"]
    scales, betas, contrib, contrib_cf_deploy, lift_deltas = [], [], [], [], {}
    for ci, spec in enumerate(specs):
        ad = adstock(spend[ci], channel_weights(spec))
        scale = float(ad[ad > 0].mean()) if (ad > 0).any() else 1.0
        if world.geo_parity:  # each geo's curve the same up to its size: equal ROAS and marginal ROAS by geo
            scale = scale * sizes[:, None]
        shape = response_shape(spend[ci], spec, scale, zt, zp)
        b = spec.target_roas * spend[ci].sum() / max((sizes[:, None] * shape).sum(), 1e-9)
        scales.append(scale)
        betas.append(b * sizes)
        contrib.append(b * sizes[:, None] * shape)
        cf = spend[ci].copy()
        if ci == ci_meta:
            cf_d = cf.copy()
            cf_d[treated, deploy_start:deploy_end] /= DEPLOYMENT_MULTIPLIER
            contrib_cf_deploy = b * sizes[:, None] * response_shape(cf_d, spec, scale, zt, zp)
        for k, (lc, gi, l_start, l_end) in enumerate(lift_plan):
            if lc == ci:  # the test's true effect: this channel's contribution with and without the added spend
                cf_l = cf.copy()
                cf_l[gi, l_start:l_end + 1] /= LIFT_TEST_MULTIPLIER
                without = b * sizes[gi] * response_shape(cf_l, spec, scale, zt, zp)[gi, l_start:l_end + 1]
                lift_deltas[k] = float((contrib[-1][gi, l_start:l_end + 1] - without).sum())
    contrib = np.array(contrib)
    media = contrib.sum(axis=0)

    # baseline demand
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    tt = np.arange(n) / 365.25
    dow = np.array([d.weekday() for d in dates])
    weekday = np.array(BASELINE["weekday"]) / np.mean(BASELINE["weekday"])
    shock = r_baseline.lognormal(-0.5 * BASELINE["demand_shock_sd"] ** 2, BASELINE["demand_shock_sd"], (len(geos), n))
    eta_t, eta_p = (BASELINE["eta_temperature_2m_mean"], BASELINE["eta_precipitation_sum"]) if world.baseline_weather \
        else (0.0, 0.0)
    shape_base = (
        np.exp(BASELINE["trend_per_year"] * tt)
        * (1 + BASELINE["yearly_amplitude"] * np.cos(2 * np.pi * (doy - BASELINE["yearly_peak_doy"]) / 365.25))
        * weekday[dow]
        * (1 + BASELINE["holiday_lift"] * _holidays(dates))
        * (1 + world.holiday_demand * season)
    )[None, :] * np.exp(eta_t * zt + eta_p * zp) * shock
    b0 = (target * n - media.sum(axis=1)) / (shape_base * (1 + promo_f + life_f)[None, :]).sum(axis=1)
    if (b0 <= 0).any():
        raise ValueError("paid media would exceed expected revenue; lower media_share or the target ROAS")
    baseline = b0[:, None] * shape_base
    promo_lift = baseline * promo_f[None, :]
    life_lift = baseline * life_f[None, :]
    mu = baseline + promo_lift + life_lift + media
    for p in promos + sends:
        p.lift = float((baseline * factors[p.promotion_id][None, :]).sum())

    # orders
    book = generate_orders(catalog, promos, pricing, mu / env[None, :], dates, geos, TIMEZONE, r_orders, _dumps)

    writer = _Writer(root)
    _write_tenant_yaml(writer, tenant_id, grain)
    for month, lines in sorted(book.originals.items()):
        writer.lines(f"shopify/orders/{month}-created.jsonl", lines)
    for month, lines in sorted(book.changes.items()):
        writer.lines(f"shopify/orders/{month}-updated.jsonl", lines)  # sorts after
    _write_products(writer, catalog, promos, dates)
    _write_price_rules(writer, promos, dates, catalog, book.code_usage)
    _write_meta(writer, specs, parts, contrib, geos, dates, r_misc)
    _write_google(writer, specs, parts, contrib, geos, dates, r_misc)
    _write_klaviyo(writer, sends, dates, r_klaviyo)
    for g, w in zip(geos, weather):
        for month, idx in month_slices(dates):
            writer.text(f"weather/daily/{g.geo_id}/{month}.json", _dumps(open_meteo_response(g, all_dates, w, idx)) + "\n")
        fidx = slice(n, n + FORECAST_DAYS)
        writer.text(f"weather/forecast/{g.geo_id}/{all_dates[n].isoformat()}.json",
                    _dumps(open_meteo_response(g, all_dates, w, fidx)) + "\n")

    # deployment and lift test truths
    treated_ids = [geos[i].geo_id for i in treated]
    meta_name = specs[ci_meta].name
    win = slice(deploy_start, deploy_end)  # what an audit of the window measures (adstock carry-over after it aside)
    d_effect = float((contrib[ci_meta][treated, win] - contrib_cf_deploy[treated, win]).sum())
    d_spend = float(spend[ci_meta][treated, deploy_start:deploy_end].sum() * (1 - 1 / DEPLOYMENT_MULTIPLIER))
    mu_cf_post = float(mu[treated, win].sum()) - d_effect
    deployment = DeploymentTruth(
        deployment_id=f"dep-{dates[deploy_start]:%Y-%m}-{meta_name}-{'-'.join(g.lower() for g in treated_ids)}",
        channels=[meta_name], geo_ids=treated_ids, start_date=dates[deploy_start].isoformat(),
        end_date=dates[deploy_end - 1].isoformat() if deploy_end < n else None,
        spend_multiplier=DEPLOYMENT_MULTIPLIER, spend_delta=_round(d_spend), effect=_round(d_effect),
        relative_effect=_round(d_effect / mu_cf_post, 6),
    )
    writer.lines(f"autopilot/deployments/{dates[deploy_start]:%Y-%m}.jsonl", [_dumps({
        "deployment_id": deployment.deployment_id, "plan_id": None,
        "started_at": _local_ts(dates[deploy_start]),
        "ended_at": _local_ts(dates[deploy_end]) if deploy_end < n else None,
        "channels": deployment.channels, "geo_ids": treated_ids,
        "description": f"{meta_name} budget +{round((DEPLOYMENT_MULTIPLIER - 1) * 100)}% in {', '.join(treated_ids)}",
    })])
    lifts, lift_files = [], {}
    for k, (ci, gi, l_start, l_end) in enumerate(lift_plan):
        true_delta = lift_deltas[k]
        l_spend = float(spend[ci][gi, l_start:l_end + 1].sum() * (1 - 1 / LIFT_TEST_MULTIPLIER))
        sd = round(0.15 * abs(true_delta) + 25.0)
        reported = round(true_delta + r_tests.normal(0.0, sd))
        lift = LiftTestTruth(
            channel=specs[ci].name, geo_id=geos[gi].geo_id, start_date=dates[l_start].isoformat(),
            end_date=dates[l_end].isoformat(), spend_multiplier=LIFT_TEST_MULTIPLIER, spend_delta=_round(l_spend),
            true_kpi_delta=_round(true_delta), reported_kpi_delta=float(reported), kpi_delta_sd=float(sd),
        )
        lifts.append(lift)
        path = f"experiments/lift_tests/{dates[l_start]:%Y}-q{(dates[l_start].month - 1) // 3 + 1}.csv"
        lift_files.setdefault(path, []).append(
            f"{lift.channel},{lift.geo_id},{lift.start_date},{lift.end_date},{l_spend:.2f},{reported},{sd}\n")
    for path, rows in lift_files.items():
        writer.text(path, "channel,geo_id,start_date,end_date,spend_delta,kpi_delta,kpi_delta_sd\n" + "".join(rows))

    bad_list: list[BadFile] = []
    if scenario == "bad_files":
        bad_list = bad.write_bad_files(writer, geos, dates, all_dates, weather, _dumps)

    # the horizon the plans are made for: its actual weather (what the forecast files say) and expected baseline
    h_dates = all_dates[n:]
    hz = {k: np.array([(getattr(w, k)[n:] - w_mean[k][gi]) / w_sd[k][gi] for gi, w in enumerate(weather)])
          for k in WEATHER_VARIABLES}
    h_doy = np.array([d.timetuple().tm_yday for d in h_dates], dtype=float)
    h_tt = np.arange(n, n + FORECAST_DAYS) / 365.25
    h_shape = (
        np.exp(BASELINE["trend_per_year"] * h_tt)
        * (1 + BASELINE["yearly_amplitude"] * np.cos(2 * np.pi * (h_doy - BASELINE["yearly_peak_doy"]) / 365.25))
        * weekday[np.array([d.weekday() for d in h_dates])]
        * (1 + BASELINE["holiday_lift"] * _holidays(h_dates))
        * (1 + world.holiday_demand * _holiday_season(h_dates))
    )[None, :] * np.exp(eta_t * hz["temperature_2m_mean"] + eta_p * hz["precipitation_sum"])
    gids = [g.geo_id for g in geos]
    horizon = HorizonTruth(
        dates=[d.isoformat() for d in h_dates],
        weather={k: {gid: _series(getattr(w, k)[n:], 1) for gid, w in zip(gids, weather)} for k in WEATHER_VARIABLES},
        z={k: {gid: _series(hz[k][gi], 4) for gi, gid in enumerate(gids)} for k in WEATHER_VARIABLES},
        baseline={gid: _series(b0[gi] * h_shape[gi]) for gi, gid in enumerate(gids)},
    )

    truth = _build_truth(
        tenant_id, scenario, seed, dates, orders_per_geo_day, geos, sizes, w_mean, w_sd, z, b0, specs, scales, betas,
        spend, contrib, promos, sends, baseline, promo_lift, life_lift, mu, no_promo_env, book, deployment, lifts,
        media_share, bad_list, writer.counts,
    )
    truth = truth.model_copy(update={"horizon": horizon, "world": WorldTruth.from_world(world)})
    truth.write(truth_path)
    return truth


def _write_tenant_yaml(writer: _Writer, tenant_id: str, grain: tuple[str, str] | None) -> None:
    writer.text("tenant.yaml", (
        f"timezone: {TIMEZONE}\n"
        "currency: USD\n"
        "kpi: net_revenue\n"
        + (f"grain: {{product: {grain[0]}, geo: {grain[1]}}}\n" if grain else "") +
        "planning: {horizon_days: 28, max_change_pct: 30}\n"
        f"autopilot: {{requires_approval: true, approvers: [growth-lead@{tenant_id}.example, "
        f"cfo@{tenant_id}.example], appliers: [media-ops@{tenant_id}.example]}}\n"
    ))


def _write_products(writer: _Writer, catalog: Catalog, promos: list[Promotion], dates: list[date]) -> None:
    """The catalog at the start, then the markdown extract: the same products with compare-at prices."""
    created = _local_ts(dates[0] - timedelta(days=400), "10:00:00")

    def product(pi: int, updated: str, markdown: Promotion | None) -> str:
        variants = []
        for v in np.nonzero(catalog.variant_product == pi)[0]:
            regular = float(catalog.variant_price[v])
            if markdown is not None:
                price = float(np.round(regular * (1 - markdown.depth_pct / 100), 2))
                variants.append({"id": int(catalog.variant_ids[v]), "sku": catalog.variant_sku[v],
                                 "title": catalog.variant_title[v], "price": f"{price:.2f}",
                                 "compare_at_price": f"{regular:.2f}"})
            else:
                variants.append({"id": int(catalog.variant_ids[v]), "sku": catalog.variant_sku[v],
                                 "title": catalog.variant_title[v], "price": f"{regular:.2f}",
                                 "compare_at_price": None})
        cat = CATEGORIES[catalog.product_category[pi]][0]
        tags = ", ".join(t for t in (cat.lower(), "clearance" if markdown else "") if t)
        return _dumps({
            "id": catalog.product_ids[pi], "title": catalog.product_titles[pi], "product_type": cat,
            "vendor": "Weathervane Outfitters", "tags": tags, "status": "active", "created_at": created,
            "updated_at": updated, "variants": variants,
        })

    writer.lines(f"shopify/products/{dates[0].isoformat()}.jsonl",
                 [product(pi, created, None) for pi in range(len(catalog.product_ids))])
    for p in promos:
        if p.promo_type == "markdown":
            updated = _local_ts(dates[p.start], "06:00:00")
            writer.lines(f"shopify/products/{dates[p.start].isoformat()}.jsonl", [
                product(pi, updated, p) for pi in range(len(catalog.product_ids))
                if catalog.product_category[pi] == p.category
            ])


def _write_price_rules(writer: _Writer, promos: list[Promotion], dates: list[date], catalog: Catalog,
                       usage: dict[str, int]) -> None:
    rules, codes = [], []
    for p in promos:
        if p.source != "shopify_price_rule":
            continue
        created = _local_ts(dates[p.start] - timedelta(days=4), "11:30:00")
        entitled = [] if p.category is None else [
            catalog.product_ids[i] for i in range(len(catalog.product_ids)) if catalog.product_category[i] == p.category
        ]
        rules.append(_dumps({
            "id": p.price_rule_id, "title": p.code, "value": f"-{p.depth_pct:.1f}", "value_type": "percentage",
            "target_type": "line_item", "target_selection": "all" if p.category is None else "entitled",
            "allocation_method": "across", "customer_selection": "all", "once_per_customer": False,
            "starts_at": _local_ts(dates[p.start]), "ends_at": _local_ts(dates[p.end], "23:59:59"),
            "entitled_product_ids": entitled, "entitled_collection_ids": [],
            "created_at": created, "updated_at": created,
        }))
        codes.append(_dumps({
            "id": p.discount_code_id, "price_rule_id": p.price_rule_id, "code": p.code,
            "usage_count": usage.get(p.code, 0), "created_at": created,
            "updated_at": _local_ts(dates[p.end], "23:59:59"),
        }))
    stamp = dates[-1].isoformat()
    writer.lines(f"shopify/price_rules/{stamp}.jsonl", rules)
    writer.lines(f"shopify/discount_codes/{stamp}.jsonl", codes)


def _write_meta(writer, specs, parts, contrib, geos, dates, rng) -> None:
    by_month: dict[str, list[str]] = {}
    for ci, spec in enumerate(specs):
        if spec.platform != "meta_ads":
            continue
        p = parts[ci]  # [k, g, t]
        for t, d in enumerate(dates):
            ds = d.isoformat()
            month = by_month.setdefault(d.strftime("%Y-%m"), [])
            for k, camp in enumerate(spec.campaigns):
                for gi, g in enumerate(geos):
                    s = float(p[k, gi, t])
                    if s <= 0:
                        continue
                    impressions = int(s / spec.cpm * 1000 * rng.lognormal(0, 0.1))
                    clicks = int(impressions * spec.ctr * rng.lognormal(0, 0.1))
                    claimed = contrib[ci, gi, t] * camp.share * 1.4 * rng.lognormal(0, 0.3)  # platforms over-claim
                    purchases = int(claimed / 70)
                    month.append(_dumps({
                        "account_id": "1234567890", "campaign_id": camp.campaign_id,
                        "campaign_name": camp.campaign_name, "adset_id": camp.adset_id,
                        "adset_name": camp.adset_name, "date_start": ds, "date_stop": ds,
                        "region": g.meta_region_name, "spend": f"{s:.2f}", "impressions": str(impressions),
                        "clicks": str(clicks), "reach": str(int(impressions * 0.78)),
                        "actions": [{"action_type": "purchase", "value": str(purchases)}] if purchases else [],
                        "action_values": ([{"action_type": "purchase", "value": f"{claimed:.2f}"}]
                                          if purchases else []),
                    }))
    for month, lines in sorted(by_month.items()):
        if lines:
            writer.lines(f"meta_ads/ads_insights_region/{month}.jsonl", lines)


def _write_google(writer, specs, parts, contrib, geos, dates, rng) -> None:
    by_month: dict[str, list[str]] = {}
    for t, d in enumerate(dates):
        ds = d.isoformat()
        month = by_month.setdefault(d.strftime("%Y-%m"), [])
        for ci, spec in enumerate(specs):
            if spec.platform != "google_ads":
                continue
            for k, camp in enumerate(spec.campaigns):
                for gi, g in enumerate(geos):
                    s = float(parts[ci][k, gi, t])
                    if s <= 0:
                        continue
                    impressions = int(s / spec.cpm * 1000 * rng.lognormal(0, 0.1))
                    clicks = int(impressions * spec.ctr * rng.lognormal(0, 0.1))
                    value = contrib[ci, gi, t] * camp.share * 1.2 * rng.lognormal(0, 0.3)
                    month.append(_dumps({
                        "segments.date": ds, "campaign.id": camp.campaign_id, "campaign.name": camp.campaign_name,
                        "campaign.advertising_channel_type": camp.channel_type,
                        "segments.geo_target_region": f"geoTargetConstants/{g.google_criterion_id}",
                        "metrics.cost_micros": str(int(round(s * 100)) * 10_000),
                        "metrics.impressions": str(impressions), "metrics.clicks": str(clicks),
                        "metrics.conversions": round(value / 70, 2), "metrics.conversions_value": round(value, 2),
                    }))
    for month, lines in sorted(by_month.items()):
        if lines:
            writer.lines(f"google_ads/campaign_geo/{month}.jsonl", lines)


def _write_klaviyo(writer, sends: list[Promotion], dates: list[date], rng) -> None:
    campaigns, values = [], []
    for i, s in enumerate(sends):
        d = dates[s.start]
        hour = 14 + int(rng.integers(0, 6))
        send_time = f"{d.isoformat()}T{hour:02d}:00:00+00:00"
        created = f"{(d - timedelta(days=2)).isoformat()}T10:00:00+00:00"
        campaigns.append(_dumps({
            "id": s.klaviyo_campaign_id, "type": "campaign",
            "attributes": {"name": s.title, "status": "Sent", "archived": False, "channel": s.channel,
                           "send_time": send_time, "created_at": created,
                           "updated_at": f"{d.isoformat()}T{hour:02d}:05:00+00:00"},
        }))
        recipients = int((40_000 if s.channel == "email" else 12_000) * (1 + 0.4 * s.start / len(dates))
                         * rng.lognormal(0, 0.05))
        delivered = int(recipients * 0.985)
        conversions = int(recipients * 0.0012 + s.lift / 75 * 2.0)  # last-touch over-claims
        values.append(_dumps({
            "groupings": {"campaign_id": s.klaviyo_campaign_id, "send_channel": s.channel},
            "statistics": {"recipients": recipients, "delivered": delivered,
                           "opens_unique": int(delivered * (0.41 if s.channel == "email" else 0.0)),
                           "clicks_unique": int(delivered * (0.035 if s.channel == "email" else 0.06)),
                           "conversions": conversions, "conversion_value": round(conversions * 75.0, 2)},
        }))
    stamp = dates[-1].isoformat()
    writer.lines(f"klaviyo/campaigns/{stamp}.jsonl", campaigns)
    writer.lines(f"klaviyo/campaign_values/{stamp}.jsonl", values)


def _series(a: np.ndarray, nd: int = 2) -> list[float]:
    return [float(v) for v in np.round(a, nd)]


def _build_truth(tenant_id, scenario, seed, dates, orders_per_geo_day, geos: tuple[GeoSpec, ...], sizes, w_mean,
                 w_sd, z, b0, specs: tuple[ChannelSpec, ...], scales, betas, spend, contrib, promos, sends, baseline,
                 promo_lift, life_lift, mu, no_promo_env, book, deployment, lifts, media_share, bad_list,
                 counts) -> Truth:
    n = len(dates)
    gids = [g.geo_id for g in geos]
    geo_truth = [GeoTruth(
        geo_id=g.geo_id, name=g.name, meta_region_name=g.meta_region_name, google_criterion_id=g.google_criterion_id,
        latitude=g.latitude, longitude=g.longitude, timezone=g.timezone, size=_round(sizes[gi], 6),
        climate={"temp_mean": g.temp_mean, "temp_amplitude": g.temp_amplitude, "anomaly_sd": g.anomaly_sd,
                 "rain_prob": g.rain_prob, "rain_prob_amplitude": g.rain_prob_amplitude,
                 "rain_scale_mm": g.rain_scale_mm},
        weather_mean={k: _round(w_mean[k][gi], 6) for k in WEATHER_VARIABLES},
        weather_sd={k: _round(w_sd[k][gi], 6) for k in WEATHER_VARIABLES},
        baseline_intercept=_round(b0[gi], 4), expected_revenue=_round(mu[gi].sum()),
        net_revenue_valid_orders=_round(book.net_daily[gi].sum()),
    ) for gi, g in enumerate(geos)]
    channel_truth = {}
    for ci, spec in enumerate(specs):
        sp_g = spend[ci].sum(axis=1)
        co_g = contrib[ci].sum(axis=1)
        gamma = {"temperature_2m_mean": spec.gamma_temp, "precipitation_sum": spec.gamma_precip}
        channel_truth[spec.name] = ChannelTruth(
            name=spec.name, platform=spec.platform,
            campaigns=[{k: v for k, v in (("campaign_id", c.campaign_id), ("campaign_name", c.campaign_name),
                                          ("adset_id", c.adset_id), ("adset_name", c.adset_name),
                                          ("advertising_channel_type", c.channel_type)) if v is not None}
                       for c in spec.campaigns],
            alpha=spec.alpha, l_max=L_MAX, adstock_weights=_series(channel_weights(spec), 8), lam=spec.lam,
            saturation=spec.saturation, hill_slope=spec.hill_slope, hill_half=spec.hill_half,
            adstock_kind=spec.adstock_kind, delay_peak=spec.delay_peak,
            scale=_round(float(np.mean(scales[ci])), 6),
            scale_by_geo=({gid: _round(float(np.ravel(scales[ci])[gi]), 6) for gi, gid in enumerate(gids)}
                          if np.ndim(scales[ci]) else None),
            beta={gid: _round(betas[ci][gi], 6) for gi, gid in enumerate(gids)},
            gamma=gamma, multiplier_per_sd={k: _round(np.exp(v), 6) for k, v in gamma.items()},
            spend=_round(sp_g.sum()), contribution=_round(co_g.sum()),
            roas=_round(co_g.sum() / sp_g.sum(), 6) if sp_g.sum() > 0 else 0.0,
            spend_by_geo={gid: _round(sp_g[gi]) for gi, gid in enumerate(gids)},
            contribution_by_geo={gid: _round(co_g[gi]) for gi, gid in enumerate(gids)},
            roas_by_geo={gid: _round(co_g[gi] / sp_g[gi], 6) if sp_g[gi] > 0 else 0.0 for gi, gid in enumerate(gids)},
        )
    promo_truth = [PromotionTruth(
        promotion_id=p.promotion_id, source=p.source, promo_type=p.promo_type, title=p.title, code=p.code,
        depth_pct=p.depth_pct, start_date=dates[p.start].isoformat(), end_date=dates[p.end].isoformat(),
        scope=p.scope, price_rule_id=p.price_rule_id, discount_code_id=p.discount_code_id,
        klaviyo_campaign_id=p.klaviyo_campaign_id, lift=_round(p.lift),
    ) for p in sorted(promos + sends, key=lambda p: (p.start, p.promotion_id))]
    orders = OrderCounts(
        written=book.written, test=book.test, cancelled=book.cancelled, valid=book.valid,
        order_versions_written=book.written + book.cancelled, units_valid=book.units_valid,
        gross_revenue_valid=_round(book.gross_valid), discounts_valid=_round(book.discounts_valid),
        net_revenue_valid=_round(book.net_valid),
        net_revenue_by_category={CATEGORIES[c][0]: _round(v) for c, v in enumerate(book.net_by_category)},
    )
    daily = DailyTruth(
        dates=[d.isoformat() for d in dates],
        spend={s.name: {gid: _series(spend[ci, gi]) for gi, gid in enumerate(gids)} for ci, s in enumerate(specs)},
        contribution={s.name: {gid: _series(contrib[ci, gi]) for gi, gid in enumerate(gids)}
                      for ci, s in enumerate(specs)},
        expected_revenue={gid: _series(mu[gi]) for gi, gid in enumerate(gids)},
        baseline={gid: _series(baseline[gi]) for gi, gid in enumerate(gids)},
        promo_lift={gid: _series(promo_lift[gi]) for gi, gid in enumerate(gids)},
        lifecycle_lift={gid: _series(life_lift[gi]) for gi, gid in enumerate(gids)},
        z={k: {gid: _series(z[k][gi], 4) for gi, gid in enumerate(gids)} for k in WEATHER_VARIABLES},
        net_revenue={gid: _series(book.net_daily[gi]) for gi, gid in enumerate(gids)},
        orders={gid: [int(v) for v in book.orders_daily[gi]] for gi, gid in enumerate(gids)},
    )
    forecast_start = dates[-1] + timedelta(days=1)
    return Truth(
        tenant_id=tenant_id, scenario=scenario, seed=seed, start_date=dates[0].isoformat(),
        end_date=dates[-1].isoformat(), days=n, n_geos=len(geos), orders_per_geo_day=orders_per_geo_day,
        media_share=media_share,
        timezone=TIMEZONE, currency="USD", forecast_start=forecast_start.isoformat(),
        forecast_end=(forecast_start + timedelta(days=FORECAST_DAYS - 1)).isoformat(),
        geos=geo_truth, channels=channel_truth,
        baseline_params=dict(BASELINE),
        promo_params={
            "code_usage": commerce.CODE_USAGE,
            **{f"lift_per_depth_{k}": v for k, v in commerce.LIFT_PER_DEPTH.items()},
            **{f"lifecycle_{k}": v for k, v in commerce.LIFECYCLE_LIFT.items()},
            "cancel_rate": commerce.CANCEL_RATE, "test_rate": commerce.TEST_RATE,
        },
        promotions=promo_truth,
        promo_lift_total=_round(promo_lift.sum()), lifecycle_lift_total=_round(life_lift.sum()),
        baseline_total=_round(baseline.sum()), media_total=_round(contrib.sum()),
        expected_revenue_total=_round(mu.sum()), expected_net_order_value=_round(no_promo_env, 4),
        orders=orders, deployment=deployment, lift_test=lifts[0] if lifts else None, lift_tests=lifts, bad_files=bad_list, files=dict(sorted(counts.items())),
        daily=daily,
    )
