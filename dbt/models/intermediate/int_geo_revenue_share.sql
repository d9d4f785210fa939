-- Each region's share of the tenant's net revenue over the trailing window ending that day (the rule that
-- allocates national-only spend to regions). Equal shares while no region has sold yet in the window.
{%- set window = var('allocation_window_days', 28) | int %}
with lines as (
    select order_date as date, geo_id, gross_amount - discount_amount as net
    from {{ ref('stg_shopify__order_lines') }}
    where tenant_id = {{ tenant_id() }} and is_sale and geo_id like '%-%'
),

geos as (select distinct geo_id from lines),

bounds as (
    select min(a) as a, max(b) as b
    from (select min(date) as a, max(date) as b from lines
          union all
          select min(date), max(date) from {{ ref('int_ad_spend_daily') }} where tenant_id = {{ tenant_id() }})
),

days as (
    select cast(t.d as date) as date
    from bounds, unnest(generate_series(bounds.a, bounds.b, interval 1 day)) as t(d)
),

daily as (
    select d.date, g.geo_id, coalesce(sum(l.net), 0) as net
    from days as d cross join geos as g
    left join lines as l on l.date = d.date and l.geo_id = g.geo_id
    group by all
),

trailing_sums as (
    select date, geo_id,
           sum(net) over (partition by geo_id order by date
                          range between interval {{ window - 1 }} day preceding and current row) as trailing_net
    from daily
)

select
    {{ tenant_id() }} as tenant_id,
    date,
    geo_id,
    case when sum(trailing_net) over (partition by date) > 0
         then trailing_net / sum(trailing_net) over (partition by date)
         else 1.0 / count(*) over (partition by date) end as revenue_share
from trailing_sums
