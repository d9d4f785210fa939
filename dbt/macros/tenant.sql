{#- The tenant of this run, validated again here: it is pasted into SQL as a literal. -#}
{% macro tenant_id() -%}
  {%- set t = var('tenant_id') -%}
  {#- parsing (no tenant yet) only reads the SQL for its refs -#}
  {%- if t is none and not execute -%}{%- set t = 'parse-only' -%}{%- endif -%}
  {%- if t is none or not modules.re.fullmatch('[a-z0-9][a-z0-9_-]{0,62}', t | string) -%}
    {{ exceptions.raise_compiler_error("var tenant_id must match ^[a-z0-9][a-z0-9_-]{0,62}$, got '" ~ t ~ "'") }}
  {%- endif -%}
  '{{ t }}'
{%- endmacro %}

{% macro tenant_timezone() -%}
  {%- set tz = var('timezone', 'UTC') | string -%}
  {%- if not modules.re.fullmatch('[A-Za-z0-9_+/-]{1,64}', tz) -%}
    {{ exceptions.raise_compiler_error("var timezone is not an IANA zone name: '" ~ tz ~ "'") }}
  {%- endif -%}
  '{{ tz }}'
{%- endmacro %}

{% macro delete_tenant_rows() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where tenant_id = {{ tenant_id() }}
  {%- endif -%}
{%- endmacro %}

{#- Seeds, staging, intermediate and marts land in schemas named exactly as configured. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{#- Local date of an ISO 8601 timestamp (with offset) in the tenant's timezone. -#}
{% macro local_date(expr) -%}
  cast(timezone({{ tenant_timezone() }}, cast({{ expr }} as timestamptz)) as date)
{%- endmacro %}

{% macro grain_product() -%}
  {%- set g = var('grain_product', 'all') -%}
  {%- if g not in ['all', 'category', 'product'] -%}
    {{ exceptions.raise_compiler_error("var grain_product must be all, category or product, got '" ~ g ~ "'") }}
  {%- endif -%}{{ g }}
{%- endmacro %}

{% macro grain_geo() -%}
  {%- set g = var('grain_geo', 'region') -%}
  {%- if g not in ['country', 'region'] -%}
    {{ exceptions.raise_compiler_error("var grain_geo must be country or region, got '" ~ g ~ "'") }}
  {%- endif -%}{{ g }}
{%- endmacro %}

{#- The grain cell of a product: 'all', its category, or its id. -#}
{% macro product_key(product_id, category) -%}
  {%- set g = grain_product() -%}
  {%- if g == 'all' -%}'all'
  {%- elif g == 'category' -%}coalesce({{ category }}, 'uncategorized')
  {%- else -%}cast({{ product_id }} as varchar)
  {%- endif -%}
{%- endmacro %}

{#- The grain cell of a geo: its ISO 3166-2 id, or its country at country level. -#}
{% macro geo_key(geo_id) -%}
  {%- if grain_geo() == 'country' -%}coalesce(split_part({{ geo_id }}, '-', 1), 'US')
  {%- else -%}{{ geo_id }}
  {%- endif -%}
{%- endmacro %}

{#- A raw landing table, restricted to this tenant; an empty table of the same shape when the stream never
    arrived (every source is optional). source() is always called so lineage stays whole. -#}
{% macro raw_records(stream) -%}
  {%- set rel = source('raw', stream) -%}
  {%- set found = true -%}
  {%- if execute -%}
    {%- set found = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
  {%- endif -%}
  {%- if found -%}
    (select tenant_id, file_path, file_hash, source_line, loaded_at, geo_id, record
     from {{ rel }} where tenant_id = {{ tenant_id() }})
  {%- else -%}
    (select null::varchar as tenant_id, null::varchar as file_path, null::varchar as file_hash,
            null::integer as source_line, null::timestamp as loaded_at, null::varchar as geo_id,
            null::json as record
     where false)
  {%- endif -%}
{%- endmacro %}

{#- Order of precedence among versions of one record: latest updated_at, else latest file, else latest line. -#}
{% macro latest_first(updated_at_expr=none) -%}
  {%- if updated_at_expr is not none -%}cast({{ updated_at_expr }} as timestamptz) desc nulls last, {% endif -%}
  loaded_at desc, file_path desc, source_line desc
{%- endmacro %}

{#- Channel names are column suffixes: lower case letters, digits and underscores only. -#}
{% macro channel_slug(expr) -%}
  trim(regexp_replace(lower({{ expr }}), '[^a-z0-9]+', '_', 'g'), '_')
{%- endmacro %}

{#- Columns present for this tenant, discovered at run time (spend channels, aggregated controls). -#}
{% macro distinct_values(relation, column, where='true') -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set q -%}
    select distinct {{ column }} as v from {{ relation }}
    where tenant_id = {{ tenant_id() }} and {{ where }} and {{ column }} is not null order by 1
  {%- endset -%}
  {{ return(run_query(q).columns[0].values() | list) }}
{%- endmacro %}

{#- Words that announce an offer in a campaign name or subject (RE2, case-insensitive). -#}
{% macro promo_words() -%}
  '(?i)(\d+(\.\d+)?\s*%\s*off|\bsale\b|free shipping|\bpromo|\bdiscount|\bdeal|black friday|cyber monday|\bbogo\b)'
{%- endmacro %}
