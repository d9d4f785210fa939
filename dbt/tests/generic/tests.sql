{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test non_negative(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0
{% endtest %}

{% test between(model, column_name, min_value, max_value) %}
select * from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}

{#- Every series (partition_by) has one row per day (or per week when period = 'week') from its first to its last. -#}
{% test no_date_gaps(model, column_name, partition_by, period_column=none) %}
with s as (
  select {{ partition_by | join(', ') }},
         {% if period_column %}{{ period_column }}{% else %}'day'{% endif %} as p,
         min({{ column_name }}) as first_date, max({{ column_name }}) as last_date,
         count(distinct {{ column_name }}) as n
  from {{ model }}
  group by all
)
select * from s
where n <> case when p = 'week' then date_diff('day', first_date, last_date) // 7 + 1
                else date_diff('day', first_date, last_date) + 1 end
{% endtest %}
