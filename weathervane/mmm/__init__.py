"""Weather-aware Bayesian MMM on PyMC-Marketing: fit, gate, save, summarise, and answer response queries."""
from weathervane.mmm.data import ModelData, ModelInputError, prepare_model_data, read_model_input
from weathervane.mmm.lift_tests import LiftTestError, lift_measurements, read_lift_tests
from weathervane.mmm.model import FitSettings, build_mmm, diagnostics, fit_mmm
from weathervane.mmm.pipeline import FittedModel, duckdb_connect, fit_panel, fit_tenant
from weathervane.mmm.response import PosteriorResponse, load_response
from weathervane.mmm.store import STATUS_FAILED, STATUS_OK, ModelRecord, latest_usable_model, write_model_outputs

__all__ = [
    "STATUS_FAILED", "STATUS_OK", "FitSettings", "FittedModel", "LiftTestError", "ModelData", "ModelInputError",
    "ModelRecord", "PosteriorResponse", "build_mmm", "diagnostics", "duckdb_connect", "fit_mmm", "fit_panel",
    "fit_tenant", "latest_usable_model", "lift_measurements", "load_response", "prepare_model_data",
    "read_lift_tests", "read_model_input", "write_model_outputs",
]
