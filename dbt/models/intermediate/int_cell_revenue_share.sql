-- Each product cell's share of its geo cell's net revenue over the trailing window ending that day: media
-- spend has no product breakdown, so it reaches product cells in proportion to what they sell.
-- Equal shares while the geo has sold nothing in the window.
{%- set window = var('allocation_window_days', 28) | int %}
with trailing_sums as (
    select s.tenant_id, s.date, s.product_key, s.geo_id,
           sum(coalesce(f.net_revenue, 0)) over (
               partition by s.product_key, s.geo_id order by s.date
               range between interval {{ window - 1 }} day preceding and current row) as trailing_net
    from {{ ref('int_model_spine') }} as s
    left join {{ ref('fct_sales_daily') }} as f
        on f.tenant_id = s.tenant_id and f.date = s.date
       and f.product_key = s.product_key and f.geo_id = s.geo_id
    where s.tenant_id = {{ tenant_id() }}
)

select
    tenant_id, date, product_key, geo_id,
    case when sum(trailing_net) over (partition by date, geo_id) > 0
         then trailing_net / sum(trailing_net) over (partition by date, geo_id)
         else 1.0 / count(*) over (partition by date, geo_id) end as revenue_share
from trailing_sums
