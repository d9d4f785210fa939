with versions as (
    select *,
        row_number() over (
            partition by record->'groupings'->>'campaign_id', record->'groupings'->>'send_channel'
            order by {{ latest_first() }}
        ) as version_rank
    from {{ raw_records('klaviyo__campaign_values') }}
)

select
    tenant_id,
    record->'groupings'->>'campaign_id' as campaign_id,
    lower(record->'groupings'->>'send_channel') as send_channel,
    cast(record->'statistics'->>'recipients' as double) as recipients,
    cast(record->'statistics'->>'delivered' as double) as delivered,
    cast(record->'statistics'->>'opens_unique' as double) as opens_unique,
    cast(record->'statistics'->>'clicks_unique' as double) as clicks_unique,
    cast(record->'statistics'->>'conversions' as double) as conversions,
    cast(record->'statistics'->>'conversion_value' as double) as conversion_value
from versions
where version_rank = 1
