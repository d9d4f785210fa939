-- Each discount allocated to an order line, with the discount application it came from.
select
    l.tenant_id,
    l.order_id,
    l.order_line_id,
    l.order_date,
    l.geo_id,
    l.is_sale,
    l.product_id,
    cast(a.alloc->>'amount' as double) as discount_amount,
    cast(a.alloc->>'discount_application_index' as integer) as discount_application_index
from {{ ref('stg_shopify__order_lines') }} as l,
     unnest(cast(l.discount_allocations as json[])) as a(alloc)
where l.tenant_id = {{ tenant_id() }}
