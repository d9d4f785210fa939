-- Promotions from every source in one shape; each keeps how it was found (detection_method).
-- scope: 'all' | 'category:<product_type>' | 'products:<id>,<id>...'
{%- set parts = ['price_rules', 'shopify_orders', 'markdowns', 'klaviyo', 'ad_campaigns'] %}
{% for p in parts %}
select tenant_id, promotion_id, source, promo_type, title, cast(code as varchar) as code,
       cast(depth_pct as double) as depth_pct, cast(depth_amount as double) as depth_amount,
       start_date, end_date, scope, detection_method, source_ref
from {{ ref('int_promotions__' ~ p) }}
where tenant_id = {{ tenant_id() }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
