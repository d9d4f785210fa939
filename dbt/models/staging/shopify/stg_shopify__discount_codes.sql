with versions as (
    select *,
        row_number() over (
            partition by record->>'id' order by {{ latest_first("record->>'updated_at'") }}
        ) as version_rank
    from {{ raw_records('shopify__discount_codes') }}
)

select
    tenant_id,
    cast(record->>'id' as bigint) as discount_code_id,
    cast(record->>'price_rule_id' as bigint) as price_rule_id,
    record->>'code' as code,
    cast(record->>'usage_count' as bigint) as usage_count,
    cast(record->>'created_at' as timestamptz) as created_at,
    cast(record->>'updated_at' as timestamptz) as updated_at
from versions
where version_rank = 1
