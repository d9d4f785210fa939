-- Discount applications of each order (index 0-based, as discount allocations refer to them).
select
    o.tenant_id,
    o.order_id,
    o.order_date,
    o.is_sale,
    cast(d.position - 1 as integer) as discount_application_index,
    d.app->>'type' as application_type,
    d.app->>'title' as title,
    d.app->>'code' as code,
    cast(d.app->>'value' as double) as value,
    d.app->>'value_type' as value_type,
    d.app->>'allocation_method' as allocation_method,
    d.app->>'target_selection' as target_selection,
    d.app->>'target_type' as target_type
from {{ ref('stg_shopify__orders') }} as o,
     unnest(cast(o.discount_applications as json[])) with ordinality as d(app, position)
where o.tenant_id = {{ tenant_id() }}
