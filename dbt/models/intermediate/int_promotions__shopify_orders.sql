-- Promotions: discounts seen on orders that no price rule explains (automatic, manual, script). One shape for every source (see int_promotions).
with products as (
    select product_id, category from {{ ref('int_products') }} where tenant_id = {{ tenant_id() }}
),

category_sizes as (
    select category, count(*) as n_products from products where category is not null group by 1
),

applications as (
    select a.*, coalesce(a.code, '') as code_key
    from {{ ref('stg_shopify__discount_applications') }} as a
    where a.tenant_id = {{ tenant_id() }} and a.is_sale
      and not (a.application_type = 'discount_code'
               and upper(a.code) in (select upper(code) from {{ ref('stg_shopify__discount_codes') }}
                                     where tenant_id = {{ tenant_id() }}))
),

application_days as (
    select application_type, title, code_key, value, value_type, order_date,
           max(target_selection) as target_selection
    from applications group by all
),

-- a discount seen again after a pause of more than 3 days is a new flight
flights as (
    select *,
           sum(case when order_date - prev_date > 3 then 1 else 0 end) over (
               partition by application_type, title, code_key, value, value_type order by order_date) as flight
    from (select *, lag(order_date) over (
                        partition by application_type, title, code_key, value, value_type order by order_date) as prev_date
          from application_days)
),

flight_bounds as (
    select application_type, title, code_key, value, value_type, flight,
           min(order_date) as start_date, max(order_date) as end_date, max(target_selection) as target_selection
    from flights group by all
),

allocated_categories as (
    select a.application_type, a.title, a.code_key, a.value, a.value_type, f.flight,
           count(distinct p.category) as n_categories, max(p.category) as category,
           string_agg(distinct cast(al.product_id as varchar), ',' order by cast(al.product_id as varchar)) as product_ids
    from applications as a
    join {{ ref('stg_shopify__discount_allocations') }} as al
        on al.tenant_id = a.tenant_id and al.order_id = a.order_id
       and al.discount_application_index = a.discount_application_index
    join flights as f
        on f.application_type = a.application_type and f.title = a.title and f.code_key = a.code_key
       and f.value = a.value and f.value_type = a.value_type and f.order_date = a.order_date
    left join products as p on p.product_id = al.product_id
    group by all
),

from_orders as (
    select
        -- the title names a discount; a title seen in several flights gets the flight's start date too
        'shopify_' || f.application_type || ':' || coalesce(f.title, f.code_key)
            || case when count(*) over (partition by f.application_type, f.title, f.code_key) > 1
                    then ':' || f.start_date else '' end as promotion_id,
        case f.application_type when 'discount_code' then 'shopify_order_code' else 'shopify_' || f.application_type end as source,
        case f.application_type when 'discount_code' then 'order' else f.application_type end
            || case f.value_type when 'percentage' then '_percentage' else '_fixed_amount' end as promo_type,
        f.title,
        nullif(f.code_key, '') as code,
        case when f.value_type = 'percentage' then f.value end as depth_pct,
        case when f.value_type = 'fixed_amount' then f.value end as depth_amount,
        f.start_date,
        f.end_date,
        case when f.target_selection = 'entitled' and c.n_categories = 1 then 'category:' || c.category
             when f.target_selection = 'entitled' and c.product_ids is not null then 'products:' || c.product_ids
             else 'all' end as scope,
        'order_discount_applications' as detection_method,
        f.title as source_ref
    from flight_bounds as f
    left join allocated_categories as c
        on c.application_type = f.application_type and c.title = f.title and c.code_key = f.code_key
       and c.value = f.value and c.value_type = f.value_type and c.flight = f.flight
)

select {{ tenant_id() }} as tenant_id, * from from_orders
