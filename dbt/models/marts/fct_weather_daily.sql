-- Observed weather per day x geo cell. At country level the regions' mean.
-- Anomalies are z-scores: (value - the geo's own mean) / its standard deviation over the observed history.
with series as (
    select tenant_id, date, {{ geo_key('geo_id') }} as geo_id,
           avg(temperature_2m_mean) as temperature_2m_mean,
           avg(temperature_2m_max) as temperature_2m_max,
           avg(precipitation_sum) as precipitation_sum
    from {{ ref('stg_weather__daily') }}
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
