-- Sales (test and cancelled orders excluded) per day x product cell x geo cell of the chosen grain.
-- Orders without a resolvable address count nationally (geo US).
{{ config(tags=['grain']) }}  -- built at the model spec's grain, after the dataset sniff
select
    l.tenant_id,
    l.order_date as date,
    {{ product_key('l.product_id', 'p.category') }} as product_key,
    {{ geo_key("coalesce(l.geo_id, 'US')") }} as geo_id,
    count(distinct l.order_id) as orders,
    sum(l.quantity) as units,
    sum(l.gross_amount) as gross_revenue,
    sum(l.discount_amount) as discount_amount,
    sum(l.gross_amount - l.discount_amount) as net_revenue
from {{ ref('stg_shopify__order_lines') }} as l
left join {{ ref('stg_shopify__products') }} as p
    on p.tenant_id = l.tenant_id and p.product_id = l.product_id
where l.tenant_id = {{ tenant_id() }} and l.is_sale
group by all
