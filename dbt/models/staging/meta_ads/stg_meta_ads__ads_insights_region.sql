-- One row per ad set x day x region (latest file wins); Meta's region names resolved to ISO 3166-2.
-- The key is the contract's whole key: campaign-level rows (no adset_id) of different campaigns on the same
-- day and region are different rows, not versions of one.
with versions as (
    select *,
        row_number() over (
            partition by record->>'campaign_id', record->>'adset_id', record->>'date_start', record->>'region'
            order by {{ latest_first() }}
        ) as version_rank
    from {{ raw_records('meta_ads__ads_insights_region') }}
)

select
    v.tenant_id,
    cast(v.record->>'date_start' as date) as date,
    v.record->>'account_id' as account_id,
    v.record->>'campaign_id' as campaign_id,
    v.record->>'campaign_name' as campaign_name,
    v.record->>'adset_id' as adset_id,
    v.record->>'adset_name' as adset_name,
    v.record->>'region' as region_name,
    g.geo_id,
    cast(v.record->>'spend' as double) as spend,
    cast(v.record->>'impressions' as bigint) as impressions,
    cast(v.record->>'clicks' as bigint) as clicks,
    cast(v.record->>'reach' as bigint) as reach,
    v.record->'actions' as actions,
    v.record->'action_values' as action_values
from versions as v
left join {{ ref('geo_regions') }} as g on g.meta_region_name = v.record->>'region'
where v.version_rank = 1
