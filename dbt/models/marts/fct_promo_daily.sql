-- Promotion and lifecycle controls per day x cell of the chosen grain.
-- promo_active / promo_depth_pct: any promotion covering a product of the cell that day (deepest depth);
-- realized_discount_rate: discounts over gross revenue of the cell's sales that day;
-- lifecycle_sends: the tenant's lifecycle messages that day (national, the same in every cell).
{{ config(tags=['grain']) }}  -- built at the model spec's grain, after the dataset sniff
with product_days as (
    select pp.category, pp.product_id, d.promotion_id, d.depth_pct, s.date
    from {{ ref('int_promotion_products') }} as pp
    join {{ ref('dim_promotion') }} as d
        on d.tenant_id = pp.tenant_id and d.promotion_id = pp.promotion_id
    join (select distinct date from {{ ref('int_model_spine') }} where tenant_id = {{ tenant_id() }}) as s
        on s.date between d.start_date and coalesce(d.end_date, s.date)
    where pp.tenant_id = {{ tenant_id() }}
),

cell_promos as (
    select date, {{ product_key('product_id', 'category') }} as product_key,
           max(depth_pct) as depth_pct, count(*) as n
    from product_days
    group by all
)

select
    s.tenant_id,
    s.date,
    s.product_key,
    s.geo_id,
    s.grain_product,
    s.grain_geo,
    case when cp.n > 0 then 1 else 0 end as promo_active,
    coalesce(cp.depth_pct, 0) as promo_depth_pct,
    case when f.gross_revenue > 0 then f.discount_amount / f.gross_revenue else 0 end as realized_discount_rate,
    coalesce(ls.lifecycle_sends, 0) as lifecycle_sends
from {{ ref('int_model_spine') }} as s
left join cell_promos as cp on cp.date = s.date and cp.product_key = s.product_key
left join {{ ref('fct_sales_daily') }} as f
    on f.tenant_id = s.tenant_id and f.date = s.date and f.product_key = s.product_key and f.geo_id = s.geo_id
left join {{ ref('int_lifecycle_sends_daily') }} as ls on ls.tenant_id = s.tenant_id and ls.date = s.date
where s.tenant_id = {{ tenant_id() }}
