-- Observed weather per day x geo cell, anomalies vs the geo's own history (macros/weather.sql).
{{ weather_by_geo_cell('stg_weather__daily') }}
