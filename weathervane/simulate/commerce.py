"""The shop: catalog, promotions (codes, automatic discounts, markdowns), Klaviyo sends and the orders they produce."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

CATEGORIES: tuple[tuple[str, float, tuple[float, float], tuple[str, ...]], ...] = (
    # product_type, share of line items, price range, product titles
    ("Apparel", 0.40, (24.0, 48.0), ("Classic Tee", "Linen Shirt", "Trail Shorts", "Merino Crew")),
    ("Outerwear", 0.15, (89.0, 169.0), ("Storm Shell", "Puffer Jacket", "Fleece Zip", "Rain Parka")),
    ("Footwear", 0.20, (69.0, 129.0), ("Canvas Sneaker", "Trail Runner", "Leather Boot", "Slide Sandal")),
    ("Accessories", 0.25, (14.0, 38.0), ("Field Cap", "Wool Beanie", "Sun Hat", "Canvas Tote")),
)
SIZES = ("S", "M", "L")
ITEMS_PER_ORDER = (np.array([1, 2, 3]), np.array([0.6, 0.3, 0.1]))
QUANTITY = (np.array([1, 2]), np.array([0.8, 0.2]))
CODE_USAGE = 0.45  # share of orders that enter an active code
CANCEL_RATE = 0.02  # cancelled orders, on top of the sales
TEST_RATE = 0.003  # test orders, on top of the sales
# revenue lift per unit of depth x scope share (15% off everything lifts baseline demand by 22.5%)
LIFT_PER_DEPTH = {"percentage_code": 1.5, "automatic_percentage": 1.5, "markdown": 1.2}
LIFECYCLE_LIFT = {"email": 0.04, "sms": 0.06}  # of baseline on the send day
LIFECYCLE_KERNEL = np.array([1.0, 0.5, 0.25])  # send day, +1, +2


@dataclass
class Catalog:
    product_ids: list[int]
    product_titles: list[str]
    product_category: list[int]
    variant_ids: np.ndarray
    variant_product: np.ndarray  # index into products
    variant_category: np.ndarray
    variant_sku: list[str]
    variant_title: list[str]
    variant_price: np.ndarray  # regular price
    variant_weight: np.ndarray  # probability a line item is this variant

    def category_gross_share(self) -> np.ndarray:
        share = np.zeros(len(CATEGORIES))
        np.add.at(share, self.variant_category, self.variant_weight * self.variant_price)
        return share / share.sum()


def build_catalog(rng: np.random.Generator) -> Catalog:
    product_ids, titles, pcat = [], [], []
    v_ids, v_prod, v_cat, v_sku, v_title, v_price, v_w = [], [], [], [], [], [], []
    for ci, (cat, share, (lo, hi), names) in enumerate(CATEGORIES):
        for pi, title in enumerate(names):
            p_index = len(product_ids)
            product_ids.append(7_900_000_000_000 + 1000 * ci + 10 * pi)
            titles.append(title)
            pcat.append(ci)
            price = float(np.round(rng.uniform(lo, hi))) - 0.05
            n_var = 1 if cat == "Accessories" else len(SIZES)
            for vi in range(n_var):
                v_ids.append(44_100_000_000_000 + 1000 * ci + 10 * pi + vi)
                v_prod.append(p_index)
                v_cat.append(ci)
                stem = "".join(w[:3] for w in title.upper().split())
                size = SIZES[vi] if n_var > 1 else "OS"
                v_sku.append(f"{stem}-{size}")
                v_title.append(size if n_var > 1 else "Default Title")
                v_price.append(price)
                v_w.append(share / len(names) / n_var)
    return Catalog(product_ids, titles, pcat, np.array(v_ids, dtype=np.int64), np.array(v_prod), np.array(v_cat),
                   v_sku, v_title, np.array(v_price), np.array(v_w))


@dataclass
class Promotion:
    promotion_id: str
    source: str
    promo_type: str
    title: str
    depth_pct: float
    start: int  # first day index (inclusive)
    end: int  # last day index (inclusive)
    category: int | None  # None = whole store
    code: str | None = None
    price_rule_id: int | None = None
    discount_code_id: int | None = None
    klaviyo_campaign_id: str | None = None
    channel: str | None = None  # klaviyo send channel
    lift: float = 0.0

    @property
    def scope(self) -> str:
        return "all" if self.category is None else f"category:{CATEGORIES[self.category][0]}"


def _season(d: date) -> str:
    return ("WINTER", "WINTER", "SPRING", "SPRING", "SPRING", "SUMMER", "SUMMER", "SUMMER", "FALL", "FALL", "FALL",
            "HOLIDAY")[d.month - 1]


def schedule_promotions(dates: list[date], rng: np.random.Generator, warmth: np.ndarray | None) -> list[Promotion]:
    """Code promotions, automatic discounts and one closing markdown, never overlapping (3 quiet days apart).

    With `warmth` (a national daily warmth score) promotions go to the warmest free windows, otherwise anywhere.
    """
    n = len(dates)
    markdown_len = 21 if n >= 90 else 14
    busy = np.zeros(n, dtype=bool)
    busy[n - markdown_len - 3:] = True  # the closing markdown and its quiet gap
    wanted: list[tuple[str, int, float, int | None]] = []
    for _ in range(max(1, round(n / 100))):
        cat = None if rng.random() < 0.7 else int(rng.integers(0, len(CATEGORIES)))
        wanted.append(("percentage_code", int(rng.integers(5, 11)), float(rng.choice([10, 15, 20, 25])), cat))
    for _ in range(max(1, round(n / 365))):
        wanted.append(("automatic_percentage", int(rng.integers(7, 15)), float(rng.choice([20, 30])),
                       int(rng.choice([1, 2]))))
    wanted.sort(key=lambda w: -w[1])  # longest first, so they still fit

    promos: list[Promotion] = []
    code_ids = 0
    auto_ids = 0
    for kind, length, depth, cat in wanted:
        starts = [s for s in range(0, n - length) if not busy[max(0, s - 3):s + length + 3].any()]
        if not starts:
            continue
        if warmth is None:
            s = int(rng.choice(starts))
        else:
            score = np.array([warmth[s:s + length].mean() for s in starts]) + rng.normal(0, 0.01, len(starts))
            s = starts[int(np.argmax(score))]
        busy[s:s + length] = True
        if kind == "percentage_code":
            code_ids += 1
            code = f"{_season(dates[s])}{int(depth)}-{dates[s]:%y}"
            while any(p.code == code for p in promos):
                code += "X"
            promos.append(Promotion(f"shopify_price_rule:{1_120_000_000 + code_ids}", "shopify_price_rule", kind,
                                    code, depth, s, s + length - 1, cat, code=code,
                                    price_rule_id=1_120_000_000 + code_ids,
                                    discount_code_id=15_800_000_000 + code_ids))
        else:
            auto_ids += 1
            title = f"{CATEGORIES[cat][0]} Week {int(depth)}% off"
            promos.append(Promotion(f"shopify_automatic:{title}", "shopify_automatic", kind, title, depth, s,
                                    s + length - 1, cat))
    md_cat = 3  # accessories clearance
    md_title = f"{CATEGORIES[md_cat][0]} clearance"
    promos.append(Promotion(f"shopify_compare_at:{md_title}", "shopify_compare_at", "markdown", md_title, 25.0,
                            n - markdown_len, n - 1, md_cat))
    promos.sort(key=lambda p: p.start)
    return promos


def schedule_klaviyo(dates: list[date], promos: list[Promotion], rng: np.random.Generator) -> list[Promotion]:
    """Regular newsletters (email about every 9 days, sms about monthly) plus a launch email per discount."""
    n = len(dates)
    sends: list[tuple[int, str, str, float]] = []
    t = int(rng.integers(1, 6))
    while t < n:
        sends.append((t, "email", f"Newsletter {dates[t]:%b %d}", 0.0))
        t += int(rng.integers(6, 13))
    t = int(rng.integers(5, 20))
    while t < n:
        sends.append((t, "sms", f"SMS drop {dates[t]:%b %d}", 0.0))
        t += int(rng.integers(25, 36))
    for p in promos:
        if p.source in ("shopify_price_rule", "shopify_automatic", "shopify_compare_at"):
            label = p.code or p.title
            sends.append((p.start, "email", f"{label} is live - {int(p.depth_pct)}% off", p.depth_pct))
    sends.sort(key=lambda s: (s[0], s[1], s[2]))
    out = []
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for t, channel, name, depth in sends:
        cid = "01" + "".join(alphabet[i] for i in rng.integers(0, 32, 24))
        out.append(Promotion(f"klaviyo_campaign:{cid}", "klaviyo_campaign", channel, name, depth, t, t, None,
                             klaviyo_campaign_id=cid, channel=channel))
    return out


def promo_factors(promos: list[Promotion], n: int, cat_share: np.ndarray) -> dict[str, np.ndarray]:
    """Per promotion: daily lift as a fraction of baseline."""
    out = {}
    for p in promos:
        f = np.zeros(n)
        if p.source == "klaviyo_campaign":
            k = LIFECYCLE_KERNEL[: max(0, min(len(LIFECYCLE_KERNEL), n - p.start))]
            f[p.start:p.start + len(k)] = LIFECYCLE_LIFT[p.promo_type] * k
        else:
            share = 1.0 if p.category is None else float(cat_share[p.category])
            f[p.start:p.end + 1] = LIFT_PER_DEPTH[p.promo_type] * p.depth_pct / 100.0 * share
        out[p.promotion_id] = f
    return out


@dataclass
class DayPricing:
    """What a line item of each variant costs and is discounted, day by day ([t, v])."""
    price: np.ndarray
    code_rate: np.ndarray  # discount rate if the order uses the active code
    auto_rate: np.ndarray
    code_index: np.ndarray  # [t] index into promos of the active code promotion, -1 if none
    auto_index: np.ndarray


def day_pricing(catalog: Catalog, promos: list[Promotion], n: int) -> DayPricing:
    nv = len(catalog.variant_ids)
    price = np.tile(catalog.variant_price, (n, 1))
    code_rate = np.zeros((n, nv))
    auto_rate = np.zeros((n, nv))
    code_index = np.full(n, -1)
    auto_index = np.full(n, -1)
    for i, p in enumerate(promos):
        days = slice(p.start, p.end + 1)
        entitled = np.ones(nv, dtype=bool) if p.category is None else catalog.variant_category == p.category
        if p.promo_type == "markdown":
            price[days, entitled] = np.round(catalog.variant_price[entitled] * (1 - p.depth_pct / 100), 2)
        elif p.promo_type == "percentage_code":
            code_rate[days, entitled] = p.depth_pct / 100
            code_index[days] = i
        elif p.promo_type == "automatic_percentage":
            auto_rate[days, entitled] = p.depth_pct / 100
            auto_index[days] = i
    return DayPricing(price, code_rate, auto_rate, code_index, auto_index)


def expected_net_order_value(catalog: Catalog, pricing: DayPricing) -> np.ndarray:
    """E[net value of one order] per day: items x quantity x E[price x (1 - discount rate)]."""
    k, pk = ITEMS_PER_ORDER
    q, pq = QUANTITY
    per_item = (pricing.price * (1 - CODE_USAGE * pricing.code_rate - pricing.auto_rate)) @ catalog.variant_weight
    return float(k @ pk) * float(q @ pq) * per_item


def _money(x: float) -> str:
    return f"{x:.2f}"


@dataclass
class OrderBook:
    originals: dict[str, list[str]] = field(default_factory=dict)  # month -> json lines
    changes: dict[str, list[str]] = field(default_factory=dict)
    code_usage: dict[str, int] = field(default_factory=dict)
    written: int = 0
    test: int = 0
    cancelled: int = 0
    valid: int = 0
    units_valid: int = 0
    gross_valid: float = 0.0
    discounts_valid: float = 0.0
    net_valid: float = 0.0
    net_by_category: np.ndarray | None = None
    net_daily: np.ndarray | None = None  # [g, t]
    orders_daily: np.ndarray | None = None


def generate_orders(
    catalog: Catalog, promos: list[Promotion], pricing: DayPricing, rate: np.ndarray, dates: list[date],
    geos, timezone: str, rng: np.random.Generator, dumps,
) -> OrderBook:
    """Draw orders (valid ~ Poisson(rate), plus cancelled and test ones) and render them as Shopify REST orders."""
    n_geo, n = rate.shape
    tz = ZoneInfo(timezone)
    kinds = []
    for kind, share in ((0, 1.0), (1, CANCEL_RATE), (2, TEST_RATE)):
        counts = rng.poisson(rate * share)
        g_idx, t_idx = np.nonzero(counts)
        reps = counts[g_idx, t_idx]
        kinds.append((np.repeat(g_idx, reps), np.repeat(t_idx, reps), np.full(reps.sum(), kind)))
    g_all = np.concatenate([k[0] for k in kinds])
    t_all = np.concatenate([k[1] for k in kinds])
    kind_all = np.concatenate([k[2] for k in kinds])
    m = len(g_all)
    secs = (rng.beta(2.2, 1.6, m) * 86399).astype(int)
    order = np.lexsort((secs, t_all))
    g_all, t_all, kind_all, secs = g_all[order], t_all[order], kind_all[order], secs[order]

    n_items = rng.choice(ITEMS_PER_ORDER[0], size=m, p=ITEMS_PER_ORDER[1])
    total_items = int(n_items.sum())
    item_variant = rng.choice(len(catalog.variant_ids), size=total_items, p=catalog.variant_weight)
    item_qty = rng.choice(QUANTITY[0], size=total_items, p=QUANTITY[1])
    item_start = np.concatenate([[0], np.cumsum(n_items)[:-1]])
    uses_code = rng.random(m) < CODE_USAGE
    update_delay = rng.integers(20, 900, m)
    cancel_delay = rng.integers(3_600, 6 * 86_400, m)
    ship_null = rng.random(m) < 0.04
    zip_pick = rng.integers(0, 4, m)

    book = OrderBook(net_by_category=np.zeros(len(CATEGORIES)), net_daily=np.zeros((n_geo, n)),
                     orders_daily=np.zeros((n_geo, n), dtype=np.int64))
    day_midnight = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in dates]
    line_id = 14_200_000_000_000
    for i in range(m):
        t, gi, kind = int(t_all[i]), int(g_all[i]), int(kind_all[i])
        geo = geos[gi]
        # wall-clock arithmetic: zoneinfo gives the offset in force at that local time (EST or EDT)
        created = day_midnight[t] + timedelta(seconds=int(secs[i]))
        # merge repeated variants into one line
        lines: dict[int, int] = {}
        for j in range(item_start[i], item_start[i] + n_items[i]):
            v = int(item_variant[j])
            lines[v] = lines.get(v, 0) + int(item_qty[j])
        ci_code = int(pricing.code_index[t])
        ci_auto = int(pricing.auto_index[t])
        apps: list[dict] = []
        auto_app = code_app = None
        if ci_auto >= 0 and any(pricing.auto_rate[t, v] > 0 for v in lines):
            p = promos[ci_auto]
            auto_app = len(apps)
            apps.append({"type": "automatic", "title": p.title, "description": p.title, "value": f"{p.depth_pct:.1f}",
                         "value_type": "percentage", "allocation_method": "across", "target_selection": "entitled",
                         "target_type": "line_item"})
        if ci_code >= 0 and uses_code[i] and any(pricing.code_rate[t, v] > 0 for v in lines):
            p = promos[ci_code]
            code_app = len(apps)
            apps.append({"type": "discount_code", "title": p.code, "code": p.code, "value": f"{p.depth_pct:.1f}",
                         "value_type": "percentage", "allocation_method": "across",
                         "target_selection": "all" if p.category is None else "entitled", "target_type": "line_item"})
        items = []
        gross = disc = 0.0
        code_amount = 0.0
        units = 0
        cat_net = {}
        for v, qty in lines.items():
            price = float(pricing.price[t, v])
            line_gross = round(price * qty, 2)
            allocs = []
            if auto_app is not None and pricing.auto_rate[t, v] > 0:
                a = round(line_gross * float(pricing.auto_rate[t, v]), 2)
                allocs.append({"amount": _money(a), "discount_application_index": auto_app})
            if code_app is not None and pricing.code_rate[t, v] > 0:
                a = round(line_gross * float(pricing.code_rate[t, v]), 2)
                code_amount += a
                allocs.append({"amount": _money(a), "discount_application_index": code_app})
            line_disc = round(sum(float(a["amount"]) for a in allocs), 2)
            gross += line_gross
            disc += line_disc
            units += qty
            c = int(catalog.variant_category[v])
            cat_net[c] = cat_net.get(c, 0.0) + line_gross - line_disc
            line_id += 1
            items.append({
                "id": line_id, "product_id": catalog.product_ids[catalog.variant_product[v]],
                "variant_id": int(catalog.variant_ids[v]), "sku": catalog.variant_sku[v],
                "title": catalog.product_titles[catalog.variant_product[v]],
                "variant_title": catalog.variant_title[v], "quantity": qty, "price": _money(price),
                "total_discount": _money(line_disc), "discount_allocations": allocs,
            })
        gross = round(gross, 2)
        disc = round(disc, 2)
        net = round(gross - disc, 2)
        codes = []
        if code_app is not None:
            p = promos[ci_code]
            codes.append({"code": p.code, "amount": _money(round(code_amount, 2)), "type": "percentage"})
            book.code_usage[p.code] = book.code_usage.get(p.code, 0) + 1
        address = {"province_code": geo.province_code, "province": geo.name, "country_code": "US",
                   "country": "United States", "zip": geo.zips[int(zip_pick[i])]}
        order_id = 5_800_000_000_000 + i
        created_s = created.isoformat()
        record = {
            "id": order_id, "name": f"#{1001 + i}", "order_number": 1001 + i,
            "created_at": created_s,
            "updated_at": (created + timedelta(seconds=int(update_delay[i]))).isoformat(),
            "processed_at": created_s, "cancelled_at": None, "cancel_reason": None,
            "test": kind == 2, "currency": "USD", "financial_status": "paid", "source_name": "web",
            "total_price": _money(net), "subtotal_price": _money(net), "total_line_items_price": _money(gross),
            "total_discounts": _money(disc), "total_tax": "0.00", "taxes_included": False,
            "discount_codes": codes, "discount_applications": apps, "line_items": items,
            "shipping_address": None if ship_null[i] else address, "billing_address": address,
        }
        month = dates[t].strftime("%Y-%m")
        book.originals.setdefault(month, []).append(dumps(record))
        book.written += 1
        if kind == 1:
            cancelled = created + timedelta(seconds=int(cancel_delay[i]))
            record.update({"updated_at": cancelled.isoformat(), "cancelled_at": cancelled.isoformat(),
                           "cancel_reason": "customer", "financial_status": "refunded"})
            book.changes.setdefault(cancelled.strftime("%Y-%m"), []).append(dumps(record))
            book.cancelled += 1
        elif kind == 2:
            book.test += 1
        else:
            book.valid += 1
            book.units_valid += units
            book.gross_valid += gross
            book.discounts_valid += disc
            book.net_valid += net
            book.net_daily[gi, t] += net
            book.orders_daily[gi, t] += 1
            for c, v in cat_net.items():
                book.net_by_category[c] += v
    return book
