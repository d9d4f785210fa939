{#-
  The table an MMM is fitted on: one row per cell of the chosen grain and period (day, and complete Monday
  weeks). Two paths:
  * connectors (Shopify orders present): KPI = net revenue; spend per channel where
      - spend reported for a region stays there;
      - national-only spend (geo US) is allocated to regions by their share of net revenue over the trailing
        `allocation_window_days` (int_geo_revenue_share), and that part is reported in spend_allocated_share;
      - at product level category/product, a geo's spend reaches its product cells by their share of the
        geo's net revenue over the same trailing window (int_cell_revenue_share);
      - at country level everything sums to geo US.
  * aggregated (no orders, raw.aggregated__mmm_input present): the delivered rows as they are, daily or
    weekly as detected from the spacing of their dates; columns other than date, geo_id, revenue and
    spend_* fill the control of the same name (`promo` -> promo_active) or become control_<name>.
    Column names come from senders' files: only names that pass the landing rule (letters, digits,
    underscores) are read, through record_number(), and case variants of one name are one column.
-#}
{{ config(tags=['grain']) }}  -- built at the model spec's grain, after the dataset sniff
-- depends_on: {{ ref('stg_shopify__orders') }}
-- depends_on: {{ ref('stg_aggregated__mmm_input') }}
-- depends_on: {{ ref('int_ad_spend_daily') }}
{%- set tenant = tenant_id() -%}
{%- set use_aggregated = false -%}
{%- set agg_channels = {} -%}  {#- channel -> raw keys -#}
{%- set agg_controls = {} -%}  {#- control column -> raw keys -#}
{%- set known_controls = ['promo_active', 'promo_depth_pct', 'realized_discount_rate', 'lifecycle_sends',
                          'temperature_2m_mean', 'temperature_2m_max', 'precipitation_sum', 'is_holiday'] -%}
{%- if execute -%}
  {%- set counts = run_query("select (select count(*) from " ~ ref('stg_shopify__orders') ~ " where tenant_id = " ~ tenant ~ "), (select count(*) from " ~ ref('stg_aggregated__mmm_input') ~ " where tenant_id = " ~ tenant ~ ")").rows[0] -%}
  {%- set use_aggregated = counts[0] == 0 and counts[1] > 0 -%}
  {%- if use_aggregated -%}
    {%- set keys = run_query("select distinct k from (select unnest(json_keys(record)) as k from " ~ ref('stg_aggregated__mmm_input') ~ " where tenant_id = " ~ tenant ~ ") order by 1").columns[0].values() -%}
    {%- for k in keys -%}
      {%- set slug = modules.re.sub('[^a-z0-9]+', '_', k | lower).strip('_') -%}
      {%- if not is_column_name(k) -%}
        {#- quarantined at ingest since the rule exists; a record loaded before it is not read by this name -#}
        {%- do log("fct_model_input: key " ~ (k | tojson) ~ " of raw.aggregated__mmm_input is not a column name; ignored", info=true) -%}
      {%- elif slug in ['date', 'geo_id', 'revenue'] -%}
      {%- elif slug.startswith('spend_') and slug | length > 6 -%}
        {%- do agg_channels.setdefault(slug[6:], []).append(k) -%}
      {%- elif slug -%}
        {%- do agg_controls.setdefault('promo_active' if slug == 'promo' else (slug if slug in known_controls else 'control_' ~ slug), []).append(k) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endif -%}
{%- set ad_channels = distinct_values(ref('int_ad_spend_daily'), 'channel') -%}

{%- if use_aggregated %}
{%- set controls = agg_controls.keys() | list %}
with delivered as (
    select tenant_id, date, geo_id, revenue, record,
           case when min(gap) over () >= 7 then 'week' else 'day' end as period,
           case when count(*) filter (where geo_id <> 'US') over () > 0 then 'region' else 'country' end as grain_geo
    from (select *, date - lag(date) over (partition by geo_id order by date) as gap
          from {{ ref('stg_aggregated__mmm_input') }} where tenant_id = {{ tenant }})
)

select
    tenant_id,
    'all' as grain_product,
    grain_geo,
    period,
    'all' as product_key,
    geo_id,
    date,
    coalesce(revenue, 0) as kpi,
    {%- for channel, keys in agg_channels.items() %}
    coalesce({{ record_number(keys) }}, 0) as spend_{{ channel_column(channel) }},
    {%- endfor %}
    {%- for c in ['promo_active', 'promo_depth_pct', 'realized_discount_rate', 'lifecycle_sends',
                  'temperature_2m_mean', 'temperature_2m_max', 'precipitation_sum'] %}
    {%- if c in controls %}
    {{ record_number(agg_controls[c]) }} as {{ c }},
    {%- else %}
    null::double as {{ c }},
    {%- endif %}
    {%- endfor %}
    {%- for v, a in [('temperature_2m_mean', 'temperature_anomaly'), ('precipitation_sum', 'precipitation_anomaly')] %}
    {%- if v in controls %}
    ({{ record_number(agg_controls[v]) }} - avg({{ record_number(agg_controls[v]) }}) over (partition by geo_id))
      / nullif(stddev_samp({{ record_number(agg_controls[v]) }}) over (partition by geo_id), 0) as {{ a }},
    {%- else %}
    null::double as {{ a }},
    {%- endif %}
    {%- endfor %}
    {%- if 'is_holiday' in controls %}
    cast({{ record_number(agg_controls['is_holiday']) }} > 0 as integer) as is_holiday,
    {%- else %}
    case when period = 'day' then cast(date in (select holiday_date from {{ ref('us_holidays') }}) as integer)
         else cast(exists (select 1 from {{ ref('us_holidays') }} as h where h.holiday_date between date and date + 6) as integer)
    end as is_holiday,
    {%- endif %}
    case when period = 'day' then isodow(date) end as day_of_week,
    {%- for control, keys in agg_controls.items() if control.startswith('control_') %}
    {{ record_number(keys) }} as {{ control }},
    {%- endfor %}
    0.0 as spend_allocated_share
from delivered

{%- else %}
{%- set region = grain_geo() == 'region' %}
with spend_geo as (
    -- spend reported for a geo cell of the grain
    select date, channel, {{ geo_key("coalesce(geo_id, 'US')") }} as geo_id, sum(spend) as spend, 0.0 as allocated
    from {{ ref('int_ad_spend_daily') }}
    where tenant_id = {{ tenant }} {% if region %}and geo_id like '%-%'{% endif %}
    group by all
    {%- if region %}
    union all
    -- national-only spend allocated to regions by their trailing revenue share
    select a.date, a.channel, s.geo_id, sum(a.spend * s.revenue_share), sum(a.spend * s.revenue_share)
    from {{ ref('int_ad_spend_daily') }} as a
    join {{ ref('int_geo_revenue_share') }} as s on s.tenant_id = a.tenant_id and s.date = a.date
    where a.tenant_id = {{ tenant }} and (a.geo_id is null or a.geo_id not like '%-%')
    group by all
    {%- endif %}
),

cell_spend as (
    select sh.date, sh.product_key, sh.geo_id, g.channel,
           sum(g.spend * sh.revenue_share) as spend, sum(g.allocated * sh.revenue_share) as allocated
    from spend_geo as g
    join {{ ref('int_cell_revenue_share') }} as sh
        on sh.tenant_id = {{ tenant }} and sh.date = g.date and sh.geo_id = g.geo_id
    group by all
),

cell_spend_wide as (
    select date, product_key, geo_id,
           {%- for ch in ad_channels %}
           sum(case when channel = {{ channel_literal(ch) }} then spend else 0 end) as spend_{{ channel_column(ch) }},
           {%- endfor %}
           sum(spend) as spend_total,
           sum(allocated) as spend_allocated
    from cell_spend
    group by all
),

daily as (
    select
        s.tenant_id, s.grain_product, s.grain_geo, s.product_key, s.geo_id, s.date,
        coalesce(f.net_revenue, 0) as kpi,
        coalesce(f.gross_revenue, 0) as gross_revenue,
        coalesce(f.discount_amount, 0) as discount_amount,
        {%- for ch in ad_channels %}
        coalesce(cs.spend_{{ ch }}, 0) as spend_{{ ch }},
        {%- endfor %}
        coalesce(cs.spend_total, 0) as spend_total,
        coalesce(cs.spend_allocated, 0) as spend_allocated,
        p.promo_active, p.promo_depth_pct, p.realized_discount_rate, p.lifecycle_sends,
        w.temperature_2m_mean, w.temperature_2m_max, w.precipitation_sum,
        w.temperature_anomaly, w.precipitation_anomaly,
        cast(h.holiday_date is not null as integer) as is_holiday
    from {{ ref('int_model_spine') }} as s
    left join {{ ref('fct_sales_daily') }} as f
        on f.tenant_id = s.tenant_id and f.date = s.date and f.product_key = s.product_key and f.geo_id = s.geo_id
    left join cell_spend_wide as cs
        on cs.date = s.date and cs.product_key = s.product_key and cs.geo_id = s.geo_id
    left join {{ ref('fct_promo_daily') }} as p
        on p.tenant_id = s.tenant_id and p.date = s.date and p.product_key = s.product_key and p.geo_id = s.geo_id
    left join {{ ref('fct_weather_daily') }} as w
        on w.tenant_id = s.tenant_id and w.date = s.date and w.geo_id = s.geo_id
    left join (select distinct holiday_date from {{ ref('us_holidays') }}) as h on h.holiday_date = s.date
    where s.tenant_id = {{ tenant }}
),

weekly as (
    -- complete Monday weeks only: a partial week would understate the KPI and spend
    select
        tenant_id, grain_product, grain_geo, product_key, geo_id,
        cast(date_trunc('week', date) as date) as date,
        sum(kpi) as kpi,
        {%- for ch in ad_channels %}
        sum(spend_{{ ch }}) as spend_{{ ch }},
        {%- endfor %}
        avg(promo_active) as promo_active,
        avg(promo_depth_pct) as promo_depth_pct,
        case when sum(gross_revenue) > 0 then sum(discount_amount) / sum(gross_revenue) else 0 end as realized_discount_rate,
        sum(lifecycle_sends) as lifecycle_sends,
        avg(temperature_2m_mean) as temperature_2m_mean,
        avg(temperature_2m_max) as temperature_2m_max,
        sum(precipitation_sum) as precipitation_sum,
        avg(temperature_anomaly) as temperature_anomaly,
        avg(precipitation_anomaly) as precipitation_anomaly,
        max(is_holiday) as is_holiday,
        case when sum(spend_total) > 0 then sum(spend_allocated) / sum(spend_total) else 0 end as spend_allocated_share
    from daily
    group by all
    having count(*) = 7
),

periods as (
    select *, 'day' as period, isodow(date) as day_of_week,
           case when spend_total > 0 then spend_allocated / spend_total else 0 end as spend_allocated_share
    from daily
    union all by name
    select *, 'week' as period, null::integer as day_of_week
    from weekly
)

select
    tenant_id, grain_product, grain_geo, period, product_key, geo_id, date,
    cast(kpi as double) as kpi,
    {%- for ch in ad_channels %}
    cast(spend_{{ ch }} as double) as spend_{{ ch }},
    {%- endfor %}
    cast(promo_active as double) as promo_active,
    cast(promo_depth_pct as double) as promo_depth_pct,
    cast(realized_discount_rate as double) as realized_discount_rate,
    cast(lifecycle_sends as double) as lifecycle_sends,
    temperature_2m_mean, temperature_2m_max, precipitation_sum, temperature_anomaly, precipitation_anomaly,
    is_holiday,
    day_of_week,
    spend_allocated_share
from periods
{%- endif %}
