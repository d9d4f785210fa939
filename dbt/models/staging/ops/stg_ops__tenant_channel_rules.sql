{%- set rel = source('ops', 'tenant_channel_rules') -%}
{%- set found = true -%}
{%- if execute -%}
  {%- set found = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
{%- endif %}
-- tenant.yaml channel regrouping rules; first match (lowest priority number) wins.
{% if found -%}
select tenant_id, cast(priority as integer) as priority, channel, platform, campaign_name_regex
from {{ rel }}
where tenant_id = {{ tenant_id() }}
{%- else -%}
select null::varchar as tenant_id, null::integer as priority, null::varchar as channel,
       null::varchar as platform, null::varchar as campaign_name_regex
where false
{%- endif %}
