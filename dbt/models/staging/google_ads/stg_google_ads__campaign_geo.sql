-- GAQL geographic_view rows (dotted keys); cost_micros becomes spend in the account currency.
with versions as (
    select *,
        row_number() over (
            partition by record->>'$."segments.date"', record->>'$."campaign.id"',
                         record->>'$."segments.geo_target_region"'
            order by {{ latest_first() }}
        ) as version_rank
    from {{ raw_records('google_ads__campaign_geo') }}
)

select
    v.tenant_id,
    cast(v.record->>'$."segments.date"' as date) as date,
    v.record->>'$."campaign.id"' as campaign_id,
    v.record->>'$."campaign.name"' as campaign_name,
    v.record->>'$."campaign.advertising_channel_type"' as advertising_channel_type,
    v.record->>'$."segments.geo_target_region"' as geo_target_region,
    g.geo_id,
    cast(v.record->>'$."metrics.cost_micros"' as bigint) / 1e6 as spend,
    cast(v.record->>'$."metrics.impressions"' as bigint) as impressions,
    cast(v.record->>'$."metrics.clicks"' as bigint) as clicks,
    cast(v.record->>'$."metrics.conversions"' as double) as conversions,
    cast(v.record->>'$."metrics.conversions_value"' as double) as conversions_value
from versions as v
left join {{ ref('geo_regions') }} as g
    on g.google_criterion_id
       = try_cast(regexp_extract(v.record->>'$."segments.geo_target_region"', '(\d+)$', 1) as bigint)
where v.version_rank = 1
