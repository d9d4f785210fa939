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
        # what the model spec's ladder fitted (weathervane.spec): period, weather terms, rung (1 = the spec)
        ("period", "VARCHAR"), ("weather_vars", "VARCHAR"), ("ladder_rung", "INTEGER"),
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


# The fit step's choice for each tenant: the model every later step (plan, experiments, audit, replay) uses, or
# none, with the reason. One row per tenant, replaced by each fit.
SELECTION_DDL = """
CREATE TABLE IF NOT EXISTS mmm.model_selection (
    tenant_id VARCHAR NOT NULL,
    selected_at TIMESTAMP NOT NULL,
    spec_id VARCHAR,
    model_id VARCHAR,
    fallback_model_id VARCHAR,
    ladder_rung INTEGER,
    ladder_label VARCHAR,
    holdout_mape DOUBLE,
    planning_warning VARCHAR,
    reason VARCHAR NOT NULL,
    rungs VARCHAR NOT NULL
)"""


OPTIONAL = {"period", "weather_vars", "ladder_rung"}  # null for a model fitted outside the ladder


def ensure_mmm_tables(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS mmm")
    con.execute(SELECTION_DDL)
    for table, cols in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS mmm.{table} ({', '.join(f'{c} {t}' for c, t in cols)})")
        # the contract only grows: a warehouse created before a column was added gets it (null for old models)
        for c, t in cols:
            con.execute(f"ALTER TABLE mmm.{table} ADD COLUMN IF NOT EXISTS {c} {t}")


def write_model_outputs(con, model_id: str, frames: dict[str, pd.DataFrame]) -> None:
    """Delete-then-insert every mmm table for `model_id`, in one transaction; frames hold the contract columns."""
    from weathervane.warehouse import transaction

    ensure_mmm_tables(con)
    with transaction(con):
        for table, cols in TABLES.items():
            con.execute(f"DELETE FROM mmm.{table} WHERE model_id = ?", [model_id])
            frame = frames.get(table)
            if frame is None or frame.empty:
                continue
            names = [c for c, _ in cols]
            missing = set(names) - set(frame.columns) - OPTIONAL
            if missing:
                raise ValueError(f"mmm.{table}: missing columns {sorted(missing)}")
            frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *names])))
            con.register("_wv_rows", frame[names])
            try:
                con.execute(f"INSERT INTO mmm.{table} ({', '.join(names)}) SELECT {', '.join(names)} FROM _wv_rows")
            finally:
                con.unregister("_wv_rows")


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    tenant_id: str
    grain_product: str
    grain_geo: str
    fitted_at: pd.Timestamp
    status: str


def write_selection(con, ladder) -> None:
    """Replace the tenant's row of mmm.model_selection with what the fit step chose (weathervane.mmm.pipeline)."""
    import json
    from datetime import UTC, datetime

    from weathervane.warehouse import transaction

    chosen = ladder.chosen
    rung = ladder.rungs[ladder.chosen_rung] if ladder.chosen_rung is not None else None
    with transaction(con):
        ensure_mmm_tables(con)
        con.execute("DELETE FROM mmm.model_selection WHERE tenant_id = ?", [ladder.tenant_id])
        con.execute(
            "INSERT INTO mmm.model_selection VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [ladder.tenant_id, datetime.now(UTC).replace(tzinfo=None), ladder.spec_id,
             chosen.model_id if chosen else None, None if chosen else ladder.fallback_model_id, rung.rung + 1 if rung else None, rung.label if rung else None,
             chosen.holdout_mape if chosen else None, ladder.planning_warning, ladder.reason,
             json.dumps([vars(o) for o in ladder.rungs], default=str)])


@dataclass(frozen=True)
class Selection:
    tenant_id: str
    model_id: str | None
    fallback_model_id: str | None
    ladder_rung: int | None
    ladder_label: str | None
    holdout_mape: float | None
    planning_warning: str | None
    reason: str


def selected_model(con, tenant_id: str) -> Selection | None:
    """The fit step's last choice for the tenant (None when no fit has chosen yet)."""
    validate_tenant_id(tenant_id)
    from weathervane.warehouse import table_exists

    if not table_exists(con, "mmm", "model_selection"):
        return None
    row = con.execute("SELECT tenant_id, model_id, fallback_model_id, ladder_rung, ladder_label, holdout_mape, planning_warning, reason "
                      "FROM mmm.model_selection WHERE tenant_id = ?", [tenant_id]).fetchone()
    return Selection(*row) if row else None


def latest_usable_model(con, tenant_id: str, grain_product: str | None = None,
                        grain_geo: str | None = None) -> ModelRecord | None:
    """The model the tenant's last fit step chose (mmm.model_selection), when it chose one at this grain; before
    any selection was recorded, the newest model with status ok. Never a failed one."""
    validate_tenant_id(tenant_id)
    chosen = selected_model(con, tenant_id)
    if chosen is not None:
        if chosen.model_id is None:
            return None
        row = con.execute("SELECT model_id, tenant_id, grain_product, grain_geo, fitted_at, status FROM mmm.models "
                          "WHERE model_id = ? AND status = ?", [chosen.model_id, STATUS_OK]).fetchone()
        if row and all(v is None or v == row[i] for i, v in ((2, grain_product), (3, grain_geo))):
            return ModelRecord(*row)
        if row:
            return None
    from weathervane.warehouse import table_exists

    if not table_exists(con, "mmm", "models"):
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
