"""Ground-truth simulator: a complete landing-zone tenant from a known data-generating process, plus its truth."""
from weathervane.simulate.cli import add_cli, main
from weathervane.simulate.core import SCENARIOS, simulate_tenant
from weathervane.simulate.truth import Truth, load_truth

__all__ = ["SCENARIOS", "Truth", "add_cli", "load_truth", "main", "simulate_tenant"]
