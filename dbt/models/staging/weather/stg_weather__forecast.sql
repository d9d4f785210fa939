-- Open-Meteo forecast weather: one row per geo x day, the latest file winning (macros/weather.sql).
{{ open_meteo_days('weather__forecast') }}
