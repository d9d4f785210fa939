-- Open-Meteo daily arrays unnested to one row per geo x day; a later file supersedes an earlier one.
with days as (
    select r.tenant_id, r.geo_id, r.file_path, r.loaded_at, r.source_line, r.record,
           cast(t.i as integer) as i
    from {{ raw_records('weather__forecast') }} as r,
         unnest(range(cast(json_array_length(r.record->'daily'->'time') as bigint))) as t(i)
),

versions as (
    select *,
        cast(record->'daily'->'time'->>i as date) as date,
        row_number() over (
            partition by geo_id, record->'daily'->'time'->>i order by {{ latest_first() }}
        ) as version_rank
    from days
)

select
    tenant_id,
    geo_id,
    date,
    cast(record->'daily'->'temperature_2m_mean'->>i as double) as temperature_2m_mean,
    cast(record->'daily'->'temperature_2m_max'->>i as double) as temperature_2m_max,
    cast(record->'daily'->'temperature_2m_min'->>i as double) as temperature_2m_min,
    cast(record->'daily'->'precipitation_sum'->>i as double) as precipitation_sum,
    cast(record->'daily'->'snowfall_sum'->>i as double) as snowfall_sum,
    cast(record->'daily'->'wind_speed_10m_max'->>i as double) as wind_speed_10m_max,
    file_path
from versions
where version_rank = 1
