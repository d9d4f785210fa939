-- Forecast weather per day x geo cell, anomalies vs the geo's observed history (macros/weather.sql).
{{ config(tags=['grain']) }}  -- built at the model spec's grain, after the dataset sniff
{{ weather_by_geo_cell('stg_weather__forecast') }}
