-- Every delivered version of every variant's price: compare-at markdowns are read from how it changes.
with versions as (
    select *,
        {{ local_date("record->>'updated_at'") }} as valid_from,
        row_number() over (
            partition by record->>'id', record->>'updated_at' order by {{ latest_first() }}
        ) as duplicate_rank
    from {{ raw_records('shopify__products') }}
)

select
    v.tenant_id,
    cast(v.record->>'id' as bigint) as product_id,
    nullif(trim(v.record->>'product_type'), '') as category,
    cast(v.record->>'updated_at' as timestamptz) as updated_at,
    v.valid_from,
    cast(x.variant->>'id' as bigint) as variant_id,
    x.variant->>'sku' as sku,
    cast(x.variant->>'price' as double) as price,
    cast(x.variant->>'compare_at_price' as double) as compare_at_price
from versions as v,
     unnest(cast(v.record->'variants' as json[])) as x(variant)
where v.duplicate_rank = 1
