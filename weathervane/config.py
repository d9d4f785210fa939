"""Paths, tenant ids and tenant.yaml settings.

Paths are functions (not import-time constants) so callers and tests can point them anywhere.
"""
from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
REPO_ROOT = Path(__file__).resolve().parent.parent


class InvalidTenantId(ValueError):
    """A tenant id that must never reach a path or a SQL statement."""


class TenantConfigError(ValueError):
    """tenant.yaml is unreadable or holds a bad value."""


def validate_tenant_id(tenant_id: object) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise InvalidTenantId(
            f"invalid tenant id {tenant_id!r}: must match {TENANT_ID_PATTERN.pattern}"
        )
    return tenant_id


def _env_path(var: str, default: str) -> Path:
    return Path(os.environ.get(var) or default)


def landing_root() -> Path:
    return _env_path("WEATHERVANE_LANDING", "data/landing")


def warehouse_path() -> Path:
    return _env_path("WEATHERVANE_WAREHOUSE", "data/warehouse.duckdb")


def model_store() -> Path:
    return _env_path("WEATHERVANE_MODEL_STORE", "data/models")


def reports_dir() -> Path:
    return _env_path("WEATHERVANE_REPORTS", "data/reports")


def assets_dir() -> Path:
    return REPO_ROOT / "assets"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Grain(_Strict):
    product: Literal["all", "category", "product"] = "all"
    geo: Literal["country", "region"] = "region"


class ChannelRule(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    platform: Literal["meta_ads", "google_ads"] | None = None
    campaign_name: str | None = None  # a regular expression

    @field_validator("campaign_name")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return v


class Planning(_Strict):
    horizon_days: int = Field(28, ge=1, le=366)
    start: date | None = None
    total_budget: float | None = Field(None, ge=0)
    max_change_pct: float | None = Field(30, ge=0)
    min_roas: float | None = Field(None, ge=0)
    margin: float | None = Field(None, gt=0, le=1)
    channel_min: dict[str, float] = Field(default_factory=dict)
    channel_max: dict[str, float] = Field(default_factory=dict)
    geo_min: dict[str, float] = Field(default_factory=dict)
    geo_max: dict[str, float] = Field(default_factory=dict)


class Autopilot(_Strict):
    requires_approval: bool = True
    approvers: list[str] = Field(default_factory=list)
    webhook_url: str | None = None


class TenantConfig(_Strict):
    timezone: str = "UTC"
    currency: str = "USD"
    kpi: Literal["net_revenue"] = "net_revenue"
    grain: Grain = Field(default_factory=Grain)
    channels: list[ChannelRule] = Field(default_factory=list)
    planning: Planning = Field(default_factory=Planning)
    autopilot: Autopilot = Field(default_factory=Autopilot)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {v!r}") from exc
        return v


def tenant_dir(root: Path | str, tenant_id: str) -> Path:
    return Path(root) / validate_tenant_id(tenant_id)


def load_tenant_config(root: Path | str | None, tenant_id: str) -> TenantConfig:
    """Read `<root>/<tenant>/tenant.yaml`; defaults apply when it is absent."""
    path = tenant_dir(root if root is not None else landing_root(), tenant_id) / "tenant.yaml"
    if not path.exists():
        return TenantConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TenantConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TenantConfigError(f"{path}: top level must be a mapping")
    try:
        return TenantConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise TenantConfigError(f"{path}: {problems}") from exc
