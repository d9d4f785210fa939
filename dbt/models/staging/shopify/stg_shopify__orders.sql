-- One row per order: the latest version by updated_at, else the latest file and line.
with versions as (
    select *,
        row_number() over (
            partition by record->>'id' order by {{ latest_first("record->>'updated_at'") }}
        ) as version_rank
    from {{ raw_records('shopify__orders') }}
),

latest as (
    select *,
        case when json_type(record->'shipping_address') = 'OBJECT'
             then record->'shipping_address' else record->'billing_address' end as address
    from versions
    where version_rank = 1
)

select
    l.tenant_id,
    cast(l.record->>'id' as bigint) as order_id,
    cast(l.record->>'created_at' as timestamptz) as created_at,
    cast(l.record->>'updated_at' as timestamptz) as updated_at,
    cast(l.record->>'cancelled_at' as timestamptz) as cancelled_at,
    {{ local_date("l.record->>'created_at'") }} as order_date,
    coalesce(cast(l.record->>'test' as boolean), false) as is_test,
    (l.record->>'cancelled_at') is not null as is_cancelled,
    not (coalesce(cast(l.record->>'test' as boolean), false) or (l.record->>'cancelled_at') is not null) as is_sale,
    l.record->>'currency' as currency,
    l.record->>'financial_status' as financial_status,
    cast(l.record->>'total_price' as double) as total_price,
    cast(l.record->>'subtotal_price' as double) as subtotal_price,
    cast(l.record->>'total_discounts' as double) as total_discounts,
    upper(l.address->>'country_code') as country_code,
    upper(l.address->>'province_code') as province_code,
    -- ISO 3166-2 through the reference table; the country when the state is unknown, null when nothing is
    coalesce(region.geo_id, country.geo_id) as geo_id,
    l.record->'line_items' as line_items,
    l.record->'discount_applications' as discount_applications,
    l.file_path,
    l.loaded_at
from latest as l
left join {{ ref('geo_regions') }} as region
    on region.country_code = upper(l.address->>'country_code')
   and region.region_code = upper(l.address->>'province_code')
left join {{ ref('geo_regions') }} as country
    on country.geo_id = upper(l.address->>'country_code') and country.region_code is null
