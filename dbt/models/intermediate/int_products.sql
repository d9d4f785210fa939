-- Every product of the tenant with its category: the catalog, plus products only seen on orders.
select tenant_id, product_id, category
from {{ ref('stg_shopify__products') }}
where tenant_id = {{ tenant_id() }}
union all
select distinct tenant_id, product_id, null as category
from {{ ref('stg_shopify__order_lines') }}
where tenant_id = {{ tenant_id() }}
  and product_id is not null
  and product_id not in (select product_id from {{ ref('stg_shopify__products') }} where tenant_id = {{ tenant_id() }})
