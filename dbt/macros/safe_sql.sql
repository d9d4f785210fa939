{#- Names that reach SQL from data (CSV column names, channel slugs) are checked here before they are used;
    whatever fails the check never reaches the SQL text. -#}

{#- The column-name rule of landing CSV files (weathervane.landing.parse.COLUMN_NAME). -#}
{% macro is_column_name(name) -%}
  {{ return(name is string and modules.re.fullmatch('[A-Za-z][A-Za-z0-9_]{0,62}', name) is not none) }}
{%- endmacro %}

{#- A channel as a column suffix (spend_<channel>): lower case letters, digits and underscores. -#}
{% macro channel_column(channel) -%}
  {%- if not (channel is string and modules.re.fullmatch('[a-z0-9][a-z0-9_]{0,59}', channel)) -%}
    {{ exceptions.raise_compiler_error("channel " ~ (channel | tojson) ~ " cannot name a column: "
                                       ~ "expected lower case letters, digits and underscores") }}
  {%- endif -%}
  {{ return(channel) }}
{%- endmacro %}

{#- A channel name as a SQL string literal (checked like a column suffix, so it holds no quote). -#}
{% macro channel_literal(channel) -%}
  '{{ channel_column(channel) }}'
{%- endmacro %}

{#- The number under one of `keys` in a raw JSON `record` (the first present; case variants of one column
    delivered by different files). Each key passed the column-name rule, so the literal holds no quote. -#}
{% macro record_number(keys) -%}
  {%- for k in keys -%}
    {%- if not is_column_name(k) -%}
      {{ exceptions.raise_compiler_error("refusing to read key " ~ (k | tojson) ~ " of a raw record: not a column name") }}
    {%- endif -%}
  {%- endfor -%}
  {%- if keys | length == 1 -%}try_cast(record->>'{{ keys[0] }}' as double)
  {%- else -%}coalesce({% for k in keys %}try_cast(record->>'{{ k }}' as double){{ ", " if not loop.last }}{% endfor %})
  {%- endif -%}
{%- endmacro %}
