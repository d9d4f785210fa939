-- Promotions: compare-at-price markdowns, read from how product versions change. One shape for every source (see int_promotions).
with products as (
    select product_id, category from {{ ref('int_products') }} where tenant_id = {{ tenant_id() }}
),

category_sizes as (
    select category, count(*) as n_products from products where category is not null group by 1
),

product_versions as (
    select product_id, category, valid_from, updated_at,
           -- prices are rounded to cents: the median over marked-down variants, to 0.1 point
           coalesce(round(median(case when compare_at_price > price
                                      then 100 * (1 - price / compare_at_price) end), 1), 0) as markdown_pct
    from {{ ref('stg_shopify__product_variant_versions') }}
    where tenant_id = {{ tenant_id() }}
    group by all
),

markdown_runs as (
    select *,
           sum(case when markdown_pct is distinct from prev_pct then 1 else 0 end) over (
               partition by product_id order by updated_at) as run_id
    from (select *, lag(markdown_pct) over (partition by product_id order by updated_at) as prev_pct,
                 lead(valid_from) over (partition by product_id order by updated_at) as next_from
          from product_versions)
),

markdown_spans as (
    -- a run ends the day before the first later version with another markdown
    select r.product_id, max(r.category) as category, max(r.markdown_pct) as depth_pct,
           min(r.valid_from) as start_date,
           arg_max(r.next_from, r.updated_at) - 1 as end_date
    from markdown_runs as r
    where r.markdown_pct > 0
    group by r.product_id, r.run_id
),

markdown_groups as (
    select m.depth_pct, m.start_date, m.end_date,
           count(*) as n_products, count(distinct m.category) as n_categories, max(m.category) as category,
           max(cs.n_products) as category_size,
           string_agg(cast(m.product_id as varchar), ',' order by cast(m.product_id as varchar)) as product_ids
    from markdown_spans as m
    left join category_sizes as cs on cs.category = m.category
    group by m.depth_pct, m.start_date, m.end_date
),

from_markdowns as (
    select
        'shopify_compare_at:' || case when n_categories = 1 and category is not null and n_products = category_size
                                      then category else product_ids end || ':' || start_date as promotion_id,
        'shopify_compare_at' as source,
        'markdown' as promo_type,
        'compare-at price markdown' as title,
        null as code,
        depth_pct,
        null::double as depth_amount,
        start_date,
        end_date,
        case when n_categories = 1 and category is not null and n_products = category_size
             then 'category:' || category else 'products:' || product_ids end as scope,
        'compare_at_price' as detection_method,
        product_ids as source_ref
    from markdown_groups
)

select {{ tenant_id() }} as tenant_id, * from from_markdowns
