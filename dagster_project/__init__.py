"""The Dagster code location of Weathervane."""
import os
import tempfile


def _own_pytensor_compiledir() -> None:
    """Give this process its own PyTensor compile dir: compilation is not safe across processes sharing one.

    Runs on import, before PyTensor is imported, because PyTensor reads its flags once. A compile dir the operator
    set explicitly is kept; one inherited from a parent Weathervane process is replaced.
    """
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f]
    owner = os.environ.get("WEATHERVANE_PYTENSOR_PID")
    if owner == str(os.getpid()) or (owner is None and any(f.startswith("compiledir") for f in flags)):
        return
    flags = [f for f in flags if not f.startswith("compiledir")]
    flags.append("compiledir=" + tempfile.mkdtemp(prefix=f"weathervane-pytensor-{os.getpid()}-"))
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    os.environ["WEATHERVANE_PYTENSOR_PID"] = str(os.getpid())


_own_pytensor_compiledir()

# Per-tenant (partitioned) asset checks are a Dagster preview feature that this code location relies on on purpose.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r".*partitions_def on an AssetCheckSpec.*")
