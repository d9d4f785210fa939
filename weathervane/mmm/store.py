"""The `mmm` warehouse tables (warehouse contract) and the choice of the model the allocator may use."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from weathervane.config import validate_tenant_id

STATUS_OK = "ok"
STATUS_FAILED = "failed_diagnostics"

TABLES: dict[str, list[tuple[str, str]]] = {
    "models": [
        ("model_id", "VARCHAR"), ("tenant_id", "VARCHAR"), ("grain_product", "VARCHAR"), ("grain_geo", "VARCHAR"),
        ("fitted_at", "TIMESTAMP"), ("train_start", "DATE"), ("train_end", "DATE"), ("n_obs", "INTEGER"),
        ("sampler", "VARCHAR"), ("draws", "INTEGER"), ("chains", "INTEGER"), ("max_rhat", "DOUBLE"),
        ("min_ess_bulk", "DOUBLE"), ("divergences", "INTEGER"), ("holdout_mape", "DOUBLE"), ("status", "VARCHAR"),
    ],
    "channel_summary": [
        ("model_id", "VARCHAR"), ("tenant_id", "VARCHAR"), ("channel", "VARCHAR"), ("geo_id", "VARCHAR"),
        ("spend", "DOUBLE"), ("contribution_mean", "DOUBLE"), ("contribution_p05", "DOUBLE"),
        ("contribution_p95", "DOUBLE"), ("roas_mean", "DOUBLE"), ("roas_p05", "DOUBLE"), ("roas_p95", "DOUBLE"),
        ("mroas_mean", "DOUBLE"),
        # identifiability (see summaries.identifiability): is the channel's ROAS learnt from the data?
        ("roas_prior_sd", "DOUBLE"), ("roas_posterior_sd", "DOUBLE"), ("roas_contraction", "DOUBLE"),
        ("spend_cv", "DOUBLE"), ("spend_baseline_corr", "DOUBLE"), ("has_lift_test", "BOOLEAN"),
        ("needs_experiment", "BOOLEAN"),
    ],
    "weather_effects": [
        ("model_id", "VARCHAR"), ("tenant_id", "VARCHAR"), ("channel", "VARCHAR"), ("weather_variable", "VARCHAR"),
        ("multiplier_per_sd_mean", "DOUBLE"), ("multiplier_per_sd_p05", "DOUBLE"),
        ("multiplier_per_sd_p95", "DOUBLE"),
    ],
    "response_curves": [
        ("model_id", "VARCHAR"), ("tenant_id", "VARCHAR"), ("channel", "VARCHAR"), ("spend", "DOUBLE"),
        ("contribution_mean", "DOUBLE"), ("contribution_p05", "DOUBLE"), ("contribution_p95", "DOUBLE"),
    ],
}


def ensure_mmm_tables(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS mmm")
    for table, cols in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS mmm.{table} ({', '.join(f'{c} {t}' for c, t in cols)})")
        # the contract only grows: a warehouse created before a column was added gets it (null for old models)
        for c, t in cols:
            con.execute(f"ALTER TABLE mmm.{table} ADD COLUMN IF NOT EXISTS {c} {t}")


def write_model_outputs(con, model_id: str, frames: dict[str, pd.DataFrame]) -> None:
    """Delete-then-insert every mmm table for `model_id`, in one transaction; frames hold the contract columns."""
    ensure_mmm_tables(con)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, cols in TABLES.items():
            con.execute(f"DELETE FROM mmm.{table} WHERE model_id = ?", [model_id])
            frame = frames.get(table)
            if frame is None or frame.empty:
                continue
            names = [c for c, _ in cols]
            missing = set(names) - set(frame.columns)
            if missing:
                raise ValueError(f"mmm.{table}: missing columns {sorted(missing)}")
            con.register("_wv_rows", frame[names])
            try:
                con.execute(f"INSERT INTO mmm.{table} ({', '.join(names)}) SELECT {', '.join(names)} FROM _wv_rows")
            finally:
                con.unregister("_wv_rows")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    tenant_id: str
    grain_product: str
    grain_geo: str
    fitted_at: pd.Timestamp
    status: str


def latest_usable_model(con, tenant_id: str, grain_product: str | None = None,
                        grain_geo: str | None = None) -> ModelRecord | None:
    """The newest model of the tenant (and grain, when given) with status ok; never a failed one."""
    validate_tenant_id(tenant_id)
    ensure_exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'mmm' AND table_name = 'models'"
    ).fetchone()[0]
    if not ensure_exists:
        return None
    sql = ("SELECT model_id, tenant_id, grain_product, grain_geo, fitted_at, status FROM mmm.models "
           "WHERE tenant_id = ? AND status = ?")
    params: list = [tenant_id, STATUS_OK]
    for col, val in (("grain_product", grain_product), ("grain_geo", grain_geo)):
        if val is not None:
            sql += f" AND {col} = ?"
            params.append(val)
    row = con.execute(sql + " ORDER BY fitted_at DESC, model_id DESC LIMIT 1", params).fetchone()
    return ModelRecord(*row) if row else None
