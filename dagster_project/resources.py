"""Resources: where the warehouse, the landing zone and the model store live."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource

from weathervane import config
from weathervane.config import validate_tenant_id


class WeathervaneResource(ConfigurableResource):
    """Paths of one deployment. Empty fields fall back to the WEATHERVANE_* environment variables."""

    landing_root: str = ""
    warehouse_path: str = ""
    model_store: str = ""
    reports_dir: str = ""

    def landing(self) -> Path:
        return Path(self.landing_root) if self.landing_root else config.landing_root()

    def warehouse(self, tenant: str | None = None) -> Path:
        """The warehouse; with a tenant, the file that holds its tables (its own file in folder mode)."""
        from weathervane.warehouse import tenant_path

        base = Path(self.warehouse_path) if self.warehouse_path else config.warehouse_path()
        return base if tenant is None else tenant_path(base, tenant)

    def models(self) -> Path:
        return Path(self.model_store) if self.model_store else config.model_store()

    def reports(self) -> Path:
        return Path(self.reports_dir) if self.reports_dir else config.reports_dir()

    def tenant_config(self, tenant_id: str) -> config.TenantConfig:
        return config.load_tenant_config(self.landing(), validate_tenant_id(tenant_id))

    def audience(self, tenant_id: str):
        """Who the tenant's report pages are for (its currency; the banner when simulated)."""
        from weathervane.reports import audience

        return audience(validate_tenant_id(tenant_id), self.landing())

    # Writers normally hold the pool slot (single file) or are one run's writer step (folder mode), so a lock
    # conflict is a step outside those taking its short turn.
    lock_wait_s: float = 600.0

    @contextmanager
    def connect(self, read_only: bool = False, *, tenant: str | None = None):
        """A connection to the tenant's file (every asset step is one tenant's). Without a tenant, the single-file
        warehouse; a folder warehouse then refuses, naming the missing tenant."""
        from weathervane.warehouse import connect, connect_tenant, ensure_schemas

        if tenant is None:
            con = connect(self.warehouse(), read_only=read_only, lock_wait_s=self.lock_wait_s)
        else:
            con = connect_tenant(self.warehouse(), tenant, read_only=read_only, lock_wait_s=self.lock_wait_s)
        try:
            if not read_only:
                ensure_schemas(con)
            yield con
        finally:
            con.close()
