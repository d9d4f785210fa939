-- Spend as the platforms reported it, per day x channel x campaign x geo cell (national rows stay geo US).
{{ config(tags=['grain']) }}  -- built at the model spec's grain, after the dataset sniff
select
    tenant_id,
    date,
    channel,
    platform,
    campaign_id,
    max(campaign_name) as campaign_name,
    {{ geo_key("coalesce(geo_id, 'US')") }} as geo_id,
    sum(spend) as spend,
    sum(impressions) as impressions,
    sum(clicks) as clicks
from {{ ref('int_ad_spend_daily') }}
where tenant_id = {{ tenant_id() }}
group by all
