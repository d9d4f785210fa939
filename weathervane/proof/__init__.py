"""Brand proof: from a landing folder to a report a marketer can read (the Dagster part is dagster_project.proof)."""
from weathervane.proof.gaps import fill_gaps, filled_tenant_id
from weathervane.proof.report import ProofRun, render_proof, write_proof_report

__all__ = ["ProofRun", "fill_gaps", "filled_tenant_id", "render_proof", "write_proof_report"]
