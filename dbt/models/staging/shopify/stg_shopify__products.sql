with versions as (
    select *,
        row_number() over (
            partition by record->>'id' order by {{ latest_first("record->>'updated_at'") }}
        ) as version_rank
    from {{ raw_records('shopify__products') }}
)

select
    tenant_id,
    cast(record->>'id' as bigint) as product_id,
    record->>'title' as title,
    nullif(trim(record->>'product_type'), '') as category,
    record->>'vendor' as vendor,
    record->>'tags' as tags,
    record->>'status' as status,
    cast(record->>'created_at' as timestamptz) as created_at,
    cast(record->>'updated_at' as timestamptz) as updated_at,
    record->'variants' as variants
from versions
where version_rank = 1
