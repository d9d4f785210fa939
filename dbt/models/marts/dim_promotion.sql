select
    tenant_id, promotion_id, source, promo_type, title, code, depth_pct, depth_amount,
    start_date, end_date, scope, detection_method, source_ref
from {{ ref('int_promotions') }}
where tenant_id = {{ tenant_id() }}
