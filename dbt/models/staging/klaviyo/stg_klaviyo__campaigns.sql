with versions as (
    select *,
        row_number() over (
            partition by record->>'id' order by {{ latest_first("record->'attributes'->>'updated_at'") }}
        ) as version_rank
    from {{ raw_records('klaviyo__campaigns') }}
)

select
    tenant_id,
    record->>'id' as campaign_id,
    record->'attributes'->>'name' as campaign_name,
    -- subject lines are not in the campaign object of every export; kept when present
    coalesce(record->'attributes'->>'subject', record->'attributes'->'message'->>'subject') as subject,
    record->'attributes'->>'status' as status,
    coalesce(cast(record->'attributes'->>'archived' as boolean), false) as is_archived,
    lower(record->'attributes'->>'channel') as channel,
    cast(record->'attributes'->>'send_time' as timestamptz) as send_time,
    {{ local_date("record->'attributes'->>'send_time'") }} as send_date,
    cast(record->'attributes'->>'created_at' as timestamptz) as created_at,
    cast(record->'attributes'->>'updated_at' as timestamptz) as updated_at
from versions
where version_rank = 1
