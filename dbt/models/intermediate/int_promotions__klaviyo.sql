-- Promotions: Klaviyo campaigns whose name or subject announces an offer. One shape for every source (see int_promotions).
with from_klaviyo as (
    select
        'klaviyo_campaign:' || campaign_id as promotion_id,
        'klaviyo_campaign' as source,
        coalesce(channel, 'email') as promo_type,
        campaign_name as title,
        null as code,
        try_cast(regexp_extract(concat_ws(' ', campaign_name, subject), '(\d+(?:\.\d+)?)\s*%', 1) as double) as depth_pct,
        null::double as depth_amount,
        send_date as start_date,
        send_date as end_date,
        'all' as scope,
        'klaviyo_name_regex' as detection_method,
        campaign_id as source_ref
    from {{ ref('stg_klaviyo__campaigns') }}
    where tenant_id = {{ tenant_id() }}
      and regexp_matches(concat_ws(' ', campaign_name, subject), {{ promo_words() }})
)

select {{ tenant_id() }} as tenant_id, * from from_klaviyo
