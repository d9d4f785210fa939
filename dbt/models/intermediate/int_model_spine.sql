-- The cells of the chosen grain (every product x geo cell with sales) over every day from the first to the
-- last day of sales: the rows fct_promo_daily and fct_model_input are built on.
{{ config(tags=['grain']) }}  -- built at the model spec's grain, after the dataset sniff
with sales as (
    select * from {{ ref('fct_sales_daily') }} where tenant_id = {{ tenant_id() }}
),

cells as (select distinct tenant_id, product_key, geo_id from sales),

days as (
    select cast(d as date) as date
    from (select min(date) as first_day, max(date) as last_day from sales) as b,
         unnest(generate_series(b.first_day, b.last_day, interval 1 day)) as t(d)
)

select c.tenant_id, '{{ grain_product() }}' as grain_product, '{{ grain_geo() }}' as grain_geo,
       d.date, c.product_key, c.geo_id
from cells as c cross join days as d
