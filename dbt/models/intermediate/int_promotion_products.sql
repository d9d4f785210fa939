-- Which products each promotion covers (its scope expanded).
with products as (
    select product_id, category from {{ ref('int_products') }} where tenant_id = {{ tenant_id() }}
),

promos as (select * from {{ ref('dim_promotion') }} where tenant_id = {{ tenant_id() }})

select pr.tenant_id, pr.promotion_id, p.product_id, p.category
from promos as pr
join products as p
  on pr.scope = 'all'
  or (pr.scope like 'category:%' and p.category = substr(pr.scope, 10))
  or (pr.scope like 'products:%'
      and list_contains(string_split(substr(pr.scope, 10), ','), cast(p.product_id as varchar)))
