-- Meta actions and action values unnested: one row per ad set x day x region x action type.
with counts as (
    select i.tenant_id, i.date, i.campaign_id, i.adset_id, i.geo_id,
           a.x->>'action_type' as action_type, cast(a.x->>'value' as double) as action_count
    from {{ ref('stg_meta_ads__ads_insights_region') }} as i,
         unnest(cast(i.actions as json[])) as a(x)
    where i.tenant_id = {{ tenant_id() }}
),

amounts as (
    select i.tenant_id, i.date, i.campaign_id, i.adset_id, i.geo_id,
           a.x->>'action_type' as action_type, cast(a.x->>'value' as double) as action_value
    from {{ ref('stg_meta_ads__ads_insights_region') }} as i,
         unnest(cast(i.action_values as json[])) as a(x)
    where i.tenant_id = {{ tenant_id() }}
)

select
    coalesce(c.tenant_id, v.tenant_id) as tenant_id,
    coalesce(c.date, v.date) as date,
    coalesce(c.campaign_id, v.campaign_id) as campaign_id,
    coalesce(c.adset_id, v.adset_id) as adset_id,
    coalesce(c.geo_id, v.geo_id) as geo_id,
    coalesce(c.action_type, v.action_type) as action_type,
    c.action_count,
    v.action_value
from counts as c
full outer join amounts as v
    on c.date = v.date and c.campaign_id = v.campaign_id and c.adset_id is not distinct from v.adset_id
   and c.geo_id is not distinct from v.geo_id and c.action_type = v.action_type
