-- Promotions: promotion flights announced in ad campaign names. One shape for every source (see int_promotions).
with from_ads as (
    select
        'ad_campaign:' || platform || ':' || campaign_id as promotion_id,
        'ad_campaign' as source,
        'ad_flight' as promo_type,
        max(campaign_name) as title,
        null as code,
        try_cast(regexp_extract(max(campaign_name), '(\d+(?:\.\d+)?)\s*%', 1) as double) as depth_pct,
        null::double as depth_amount,
        min(date) as start_date,
        max(date) as end_date,
        'all' as scope,
        'ad_campaign_name' as detection_method,
        platform || ':' || campaign_id as source_ref
    from {{ ref('int_ad_spend_daily') }}
    where tenant_id = {{ tenant_id() }} and spend > 0
      and regexp_matches(campaign_name, {{ promo_words() }})
    group by platform, campaign_id
)

select {{ tenant_id() }} as tenant_id, * from from_ads
