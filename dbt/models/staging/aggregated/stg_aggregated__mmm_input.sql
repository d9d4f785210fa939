-- Pre-aggregated MMM rows (CSV cells arrive as strings); numeric columns are kept in `record` and
-- read by name in the mart, since each tenant brings its own channels and controls.
with versions as (
    select *,
        row_number() over (
            partition by record->>'date', coalesce(nullif(trim(record->>'geo_id'), ''), 'US')
            order by {{ latest_first() }}
        ) as version_rank
    from {{ raw_records('aggregated__mmm_input') }}
)

select
    tenant_id,
    cast(record->>'date' as date) as date,
    coalesce(nullif(trim(record->>'geo_id'), ''), 'US') as geo_id,
    cast(record->>'revenue' as double) as revenue,
    record,
    file_path,
    source_line
from versions
where version_rank = 1
