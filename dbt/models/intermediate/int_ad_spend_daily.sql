-- Ad spend of every platform at the finest level (campaign x day x geo), with its modelled channel:
-- tenant.yaml rules first (lowest priority number wins), else meta / google_<advertising channel type>.
with ads as (
    select tenant_id, date, 'meta_ads' as platform, campaign_id, campaign_name, geo_id,
           spend, impressions, clicks, 'meta' as default_channel
    from {{ ref('stg_meta_ads__ads_insights_region') }}
    where tenant_id = {{ tenant_id() }}
    union all
    select tenant_id, date, 'google_ads', campaign_id, campaign_name, geo_id,
           spend, impressions, clicks, 'google_' || {{ channel_slug('advertising_channel_type') }}
    from {{ ref('stg_google_ads__campaign_geo') }}
    where tenant_id = {{ tenant_id() }}
),

numbered as (
    select *, row_number() over () as ad_row from ads
),

ruled as (
    select n.*, r.channel as rule_channel,
           row_number() over (partition by n.ad_row order by r.priority nulls last) as rule_rank
    from numbered as n
    left join {{ ref('stg_ops__tenant_channel_rules') }} as r
        on r.tenant_id = n.tenant_id
       and (r.platform is null or r.platform = n.platform)
       and (r.campaign_name_regex is null or regexp_matches(coalesce(n.campaign_name, ''), r.campaign_name_regex))
)

select
    tenant_id,
    date,
    {{ channel_slug('coalesce(rule_channel, default_channel)') }} as channel,
    platform,
    campaign_id,
    max(campaign_name) as campaign_name,
    geo_id,
    sum(spend) as spend,
    sum(impressions) as impressions,
    sum(clicks) as clicks
from ruled
where rule_rank = 1
group by all
