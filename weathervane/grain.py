"""The grain selector: which product and geo level a tenant is modelled at, as dbt vars.

tenant.yaml's `grain` is the default; a run may override either level (Dagster run config, CLI, demo).
The same function feeds every dbt run, so the demo and production select grains the same way.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weathervane.config import Grain, TenantConfig, validate_tenant_id

PRODUCT_LEVELS = ("all", "category", "product")
GEO_LEVELS = ("country", "region")
# Days of net revenue behind the shares that allocate national and product-less spend (see fct_model_input).
ALLOCATION_WINDOW_DAYS = 28


class GrainError(ValueError):
    """A grain override names a level that does not exist."""


def resolve_grain(tenant_config: TenantConfig, grain_override: Mapping[str, Any] | Grain | None = None) -> Grain:
    """tenant.yaml's grain with the override's non-empty levels on top."""
    grain = tenant_config.grain
    if grain_override is None:
        return grain
    override = grain_override.model_dump() if isinstance(grain_override, Grain) else dict(grain_override)
    unknown = set(override) - {"product", "geo"}
    if unknown:
        raise GrainError(f"grain override: unknown key(s) {sorted(unknown)}; use 'product' and 'geo'")
    product = override.get("product") or grain.product
    geo = override.get("geo") or grain.geo
    if product not in PRODUCT_LEVELS:
        raise GrainError(f"grain override: field product must be one of {', '.join(PRODUCT_LEVELS)}, got {product!r}")
    if geo not in GEO_LEVELS:
        raise GrainError(f"grain override: field geo must be one of {', '.join(GEO_LEVELS)}, got {geo!r}")
    return Grain(product=product, geo=geo)


def dbt_vars(
    tenant_id: str,
    tenant_config: TenantConfig,
    grain_override: Mapping[str, Any] | Grain | None = None,
) -> dict[str, Any]:
    """The `--vars` of a dbt run for one tenant: its id, timezone and grain."""
    grain = resolve_grain(tenant_config, grain_override)
    return {
        "tenant_id": validate_tenant_id(tenant_id),
        "timezone": tenant_config.timezone,
        "grain_product": grain.product,
        "grain_geo": grain.geo,
        "allocation_window_days": ALLOCATION_WINDOW_DAYS,
    }


def built_grains(con, tenant_id: str) -> list[Grain]:
    """The grains marts.fct_model_input holds for the tenant (what harmonize last built), most rows first."""
    validate_tenant_id(tenant_id)
    try:
        rows = con.execute(
            "SELECT grain_product, grain_geo FROM marts.fct_model_input WHERE tenant_id = ? "
            "GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2", [tenant_id]).fetchall()
    except Exception:  # the mart is not built yet
        return []
    return [Grain(product=p, geo=g) for p, g in rows]


def model_grain(con, tenant_id: str, tenant_config: TenantConfig,
                grain_override: Mapping[str, Any] | Grain | None = None) -> Grain:
    """The grain a fit (and the plan made from it) uses, decided here for every caller.

    An explicit override wins. Otherwise tenant.yaml's grain when harmonize built it; when harmonize last ran
    with a one-off override, fct_model_input holds only that grain, and the fit follows what was built rather
    than failing on a grain with no rows."""
    if grain_override:
        return resolve_grain(tenant_config, grain_override)
    wanted = tenant_config.grain
    built = built_grains(con, tenant_id)
    if not built or wanted in built:
        return wanted
    return built[0]
