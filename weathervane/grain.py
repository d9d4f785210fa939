"""Grain levels and what harmonize built. Which grain a tenant is modelled at is decided in weathervane.spec."""
from __future__ import annotations

from weathervane.config import Grain, validate_tenant_id

PRODUCT_LEVELS = ("all", "category", "product")
GEO_LEVELS = ("country", "region")
# Days of net revenue behind the shares that allocate national and product-less spend (see fct_model_input).
ALLOCATION_WINDOW_DAYS = 28


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
