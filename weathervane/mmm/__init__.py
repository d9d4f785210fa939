"""Weather-aware Bayesian MMM on PyMC-Marketing: fit, gate, save, summarise, and answer response queries.

Names are imported on first use (PEP 562): reading a saved model's response or the mmm tables does not import
PyMC; fitting does.
"""
from __future__ import annotations

from weathervane.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "weathervane.mmm.data": ["ModelData", "ModelInputError", "prepare_model_data", "read_model_input"],
    "weathervane.mmm.lift_tests": ["LiftTestError", "lift_measurements", "read_lift_tests"],
    "weathervane.mmm.model": ["FitSettings", "build_mmm", "diagnostics", "fit_mmm"],
    "weathervane.mmm.pipeline": ["FittedModel", "duckdb_connect", "fit_ladder", "fit_panel", "fit_tenant",
                                 "fit_tenant_spec"],
    "weathervane.mmm.response": ["PosteriorResponse", "load_response"],
    "weathervane.mmm.store": ["STATUS_FAILED", "STATUS_OK", "ModelRecord", "latest_usable_model", "selected_model",
                              "write_model_outputs"],
})
