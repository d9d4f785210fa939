{#- Open-Meteo daily arrays unnested to one row per geo x day; a later file supersedes an earlier one. -#}
{% macro open_meteo_days(stream) %}
with days as (
    select r.tenant_id, r.geo_id, r.file_path, r.loaded_at, r.source_line, r.record,
           cast(t.i as integer) as i
    from {{ raw_records(stream) }} as r,
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
{% endmacro %}


{#- Weather per day x geo cell (at country level the regions' mean), with anomalies as z-scores against the
    geo's own OBSERVED history, so forecast days are measured on the same scale as the days the model saw. -#}
{% macro weather_by_geo_cell(series_model) %}
with series as (
    select tenant_id, date, {{ geo_key('geo_id') }} as geo_id,
           avg(temperature_2m_mean) as temperature_2m_mean,
           avg(temperature_2m_max) as temperature_2m_max,
           avg(precipitation_sum) as precipitation_sum
    from {{ ref(series_model) }}
    where tenant_id = {{ tenant_id() }}
    group by all
),

history as (
    select {{ geo_key('geo_id') }} as geo_id, date,
           avg(temperature_2m_mean) as t, avg(precipitation_sum) as p
    from {{ ref('stg_weather__daily') }}
    where tenant_id = {{ tenant_id() }}
    group by all
),

climate as (
    select geo_id, avg(t) as t_mean, stddev_samp(t) as t_sd, avg(p) as p_mean, stddev_samp(p) as p_sd
    from history group by 1
)

select
    s.tenant_id,
    s.date,
    s.geo_id,
    s.temperature_2m_mean,
    s.temperature_2m_max,
    s.precipitation_sum,
    (s.temperature_2m_mean - c.t_mean) / nullif(c.t_sd, 0) as temperature_anomaly,
    (s.precipitation_sum - c.p_mean) / nullif(c.p_sd, 0) as precipitation_anomaly
from series as s
left join climate as c using (geo_id)
{% endmacro %}
