-- Messages delivered per day by Klaviyo campaigns that announce no offer: a control apart from promotions.
select
    c.tenant_id,
    c.send_date as date,
    sum(coalesce(v.delivered, v.recipients, 0)) as lifecycle_sends
from {{ ref('stg_klaviyo__campaigns') }} as c
left join {{ ref('stg_klaviyo__campaign_values') }} as v
    on v.tenant_id = c.tenant_id and v.campaign_id = c.campaign_id
where c.tenant_id = {{ tenant_id() }}
  and c.send_date is not null
  and 'klaviyo_campaign:' || c.campaign_id not in (
      select promotion_id from {{ ref('dim_promotion') }} where tenant_id = {{ tenant_id() }})
group by all
