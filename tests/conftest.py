"""Shared test fixtures: every test runs against temporary landing, warehouse and model folders."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# PyTensor compilation is not safe across processes sharing a compile dir: one per test session.
os.environ.setdefault(
    "PYTENSOR_FLAGS", f"compiledir={tempfile.mkdtemp(prefix='wv-pytensor-')}"
)

# Two test workers on two cores: BLAS threads on top of them contend (a small MAP fit ran >100x slower).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
# The contract's example tenant, shipped with the tests (a fresh clone has no shared/ folder beside it).
ACME_EXAMPLE = REPO_ROOT / "tests" / "fixtures" / "acme"
SHARED_ACME = REPO_ROOT.parent / "shared" / "contracts" / "examples" / "acme"


def pytest_configure(config):
    # Parse the dbt project once, before any worker imports the code location: workers (pytest-xdist) would
    # otherwise race to write the same manifest, and a manifest left by an older checkout would go unnoticed.
    if not hasattr(config, "workerinput"):
        from dagster_project.defs.marts import prepare_dbt_manifest

        prepare_dbt_manifest()


def pytest_collection_modifyitems(config, items):
    """Long tests first, dealt alternately into two halves: pytest-xdist's worksteal scheduler hands each of two
    workers one contiguous half, so the two NUTS recovery fits (and the other heavy tests) run on different
    workers at the same time, and the quick tests at the ends of the halves are what an idle worker steals."""
    def rank(item):
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("heavy") else 2

    ranked = sorted(items, key=rank)
    long_tests = [i for i in ranked if rank(i) < 2]
    quick = [i for i in ranked if rank(i) == 2]
    halves = [long_tests[0::2], long_tests[1::2]]
    fill = max(0, len(items) // 2 - len(halves[0]))
    items[:] = halves[0] + quick[:fill] + halves[1] + quick[fill:]


@pytest.fixture
def wv_env(tmp_path, monkeypatch):
    """Point every Weathervane path at a fresh temporary folder."""
    paths = {
        "WEATHERVANE_LANDING": tmp_path / "landing",
        "WEATHERVANE_WAREHOUSE": tmp_path / "warehouse.duckdb",
        "WEATHERVANE_MODEL_STORE": tmp_path / "models",
        "WEATHERVANE_REPORTS": tmp_path / "reports",
    }
    for var, path in paths.items():
        monkeypatch.setenv(var, str(path))
    paths["WEATHERVANE_LANDING"].mkdir()
    return {k.removeprefix("WEATHERVANE_").lower(): v for k, v in paths.items()}
