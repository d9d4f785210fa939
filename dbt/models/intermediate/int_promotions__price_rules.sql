-- Promotions: Shopify price rules (and their discount codes). One shape for every source (see int_promotions).
with products as (
    select product_id, category from {{ ref('int_products') }} where tenant_id = {{ tenant_id() }}
),

category_sizes as (
    select category, count(*) as n_products from products where category is not null group by 1
),

price_rules as (
    select * from {{ ref('stg_shopify__price_rules') }} where tenant_id = {{ tenant_id() }}
),

rule_products as (
    select r.price_rule_id, unnest(r.entitled_product_ids) as product_id
    from price_rules as r
    where r.target_selection = 'entitled'
),

rule_scope as (
    select rp.price_rule_id,
           case when count(distinct p.category) = 1 and max(p.category) is not null
                     and count(distinct rp.product_id) = max(cs.n_products)
                then 'category:' || max(p.category)
                else 'products:' || string_agg(distinct cast(rp.product_id as varchar), ',' order by cast(rp.product_id as varchar))
           end as scope
    from rule_products as rp
    left join products as p on p.product_id = rp.product_id
    left join category_sizes as cs on cs.category = p.category
    group by 1
),

codes as (
    select price_rule_id, string_agg(code, ',' order by code) as code
    from {{ ref('stg_shopify__discount_codes') }} where tenant_id = {{ tenant_id() }}
    group by 1
),

from_price_rules as (
    select
        'shopify_price_rule:' || r.price_rule_id as promotion_id,
        'shopify_price_rule' as source,
        case r.value_type when 'percentage' then 'percentage_code' else 'fixed_amount_code' end as promo_type,
        r.title,
        c.code,
        case when r.value_type = 'percentage' then r.discount_value end as depth_pct,
        case when r.value_type = 'fixed_amount' then r.discount_value end as depth_amount,
        r.start_date,
        r.end_date,
        coalesce(s.scope, 'all') as scope,
        'shopify_price_rule' as detection_method,
        cast(r.price_rule_id as varchar) as source_ref
    from price_rules as r
    left join rule_scope as s using (price_rule_id)
    left join codes as c using (price_rule_id)
)

select {{ tenant_id() }} as tenant_id, * from from_price_rules
