-- Order lines unnested from the latest version of each order; amounts from Shopify's own allocations.
with lines as (
    select o.tenant_id, o.order_id, o.order_date, o.geo_id, o.is_test, o.is_cancelled, o.is_sale,
           li.line, li.line_position
    from {{ ref('stg_shopify__orders') }} as o,
         unnest(cast(o.line_items as json[])) with ordinality as li(line, line_position)
    where o.tenant_id = {{ tenant_id() }}
)

select
    tenant_id,
    order_id,
    cast(line->>'id' as bigint) as order_line_id,
    cast(line_position as integer) as line_position,
    order_date,
    geo_id,
    is_test,
    is_cancelled,
    is_sale,
    cast(line->>'product_id' as bigint) as product_id,
    cast(line->>'variant_id' as bigint) as variant_id,
    line->>'sku' as sku,
    cast(line->>'quantity' as integer) as quantity,
    cast(line->>'price' as double) as price,
    cast(line->>'price' as double) * cast(line->>'quantity' as integer) as gross_amount,
    -- the allocations are the line's discount; total_discount is Shopify's older field for the same
    coalesce(
        (select sum(cast(a->>'amount' as double)) from unnest(cast(line->'discount_allocations' as json[])) as t(a)),
        cast(line->>'total_discount' as double),
        0
    ) as discount_amount,
    line->'discount_allocations' as discount_allocations
from lines
