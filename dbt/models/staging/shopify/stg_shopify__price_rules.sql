with versions as (
    select *,
        row_number() over (
            partition by record->>'id' order by {{ latest_first("record->>'updated_at'") }}
        ) as version_rank
    from {{ raw_records('shopify__price_rules') }}
)

select
    tenant_id,
    cast(record->>'id' as bigint) as price_rule_id,
    record->>'title' as title,
    -- Shopify stores the discount as a negative value
    abs(cast(record->>'value' as double)) as discount_value,
    record->>'value_type' as value_type,
    record->>'target_type' as target_type,
    record->>'target_selection' as target_selection,
    record->>'allocation_method' as allocation_method,
    cast(record->>'starts_at' as timestamptz) as starts_at,
    cast(record->>'ends_at' as timestamptz) as ends_at,
    {{ local_date("record->>'starts_at'") }} as start_date,
    {{ local_date("record->>'ends_at'") }} as end_date,
    coalesce(cast(record->'entitled_product_ids' as bigint[]), []::bigint[]) as entitled_product_ids,
    coalesce(cast(record->'entitled_collection_ids' as bigint[]), []::bigint[]) as entitled_collection_ids,
    cast(record->>'created_at' as timestamptz) as created_at,
    cast(record->>'updated_at' as timestamptz) as updated_at
from versions
where version_rank = 1
