"""Paths, tenant ids and tenant.yaml settings.

Paths are functions (not import-time constants) so callers and tests can point them anywhere.
"""
from __future__ import annotations

import ipaddress
import os
import re
import stat
from datetime import date
from functools import lru_cache
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


# tenant.yaml is a few lines of settings; anything larger is not one.
TENANT_YAML_MAX_BYTES = 1 << 20


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
            # dbt matches with DuckDB's RE2, which lacks lookarounds and backreferences.
            problem = _duckdb_rejects("select regexp_matches('', ?)", v)
            if problem:
                raise ValueError(f"regular expression not supported by DuckDB (RE2 syntax): {problem}")
        return v


def _duckdb_rejects(sql: str, value: str) -> str | None:
    """The error DuckDB raises for `value` in `sql`, or None when it accepts it."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(sql, [value]).fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    finally:
        con.close()
    return None


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
    # a plan is proposed only when it beats keeping the current split with this posterior probability. 0.9: over
    # the robustness matrix's 30 fits (docs/robustness.md) plans at 0.8 lost to keeping the split 7 times (by up to
    # 1.7% of the best plan's revenue) and won 4 of 11 with P(better) under 0.95; at 0.9 one lost, by 0.04%
    min_prob_better: float = Field(0.9, ge=0.5, le=1)
    # ... and the model's holdout error is within this (null: no holdout required)
    max_holdout_mape: float | None = Field(0.5, gt=0)


class Autopilot(_Strict):
    requires_approval: bool = True
    approvers: list[str] = Field(default_factory=list)
    # who may apply an approved plan and roll it back; empty = no one
    appliers: list[str] = Field(default_factory=list)
    # who may read the tenant's plans on the approvals page without deciding (approvers and appliers may too)
    viewers: list[str] = Field(default_factory=list)
    # a person who proposed a plan may not also approve it (four eyes)
    requires_distinct_approver: bool = True
    webhook_url: str | None = None
    # hosts or networks (CIDR) the webhook may reach although private, loopback or link-local
    webhook_allow_private: list[str] = Field(default_factory=list)
    # rollout gate: shadow (plans never applied) | assisted (applied after a listed approver's approval) |
    # autopilot (applied without approval). Moving up needs audited evidence (weathervane.governance.autopilot).
    mode: Literal["shadow", "assisted", "autopilot"] = "assisted"
    min_improved_audits: int = Field(2, ge=1, le=100)
    evidence_lookback_days: int = Field(365, ge=7, le=3660)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None:
            from urllib.parse import urlsplit

            parts = urlsplit(v)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"must be an http(s) URL with a host: {v!r}")
        return v

    @field_validator("webhook_allow_private")
    @classmethod
    def _hosts_or_networks(cls, v: list[str]) -> list[str]:
        for entry in v:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as exc:
                    raise ValueError(f"not a network: {entry!r}") from exc
            elif not re.fullmatch(r"[A-Za-z0-9.:_-]{1,253}", entry):
                raise ValueError(f"not a host name or address: {entry!r}")
        return v


class Audit(_Strict):
    pre_period_days: int = Field(180, ge=28, le=1095)  # days before a deployment the counterfactual is fitted on


class ReplayPolicy(_Strict):
    """An extra candidate for the policy replay: the allocator at its own max change, weather-aware or not."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    max_change_pct: float | None = Field(None, ge=0)
    weather: bool = True


class Replay(_Strict):
    period_days: int = Field(7, ge=1, le=91)  # a decision period
    n_origins: int = Field(3, ge=1, le=12)  # outcome models fitted at rolling origins
    policies: list[ReplayPolicy] = Field(default_factory=list)


class ModelPins(_Strict):
    """tenant.yaml `model:`: fields of the model spec pinned by hand; the sniff refuses, with the reason, a pin
    the data cannot carry (weathervane.spec)."""

    period: Literal["day", "week"] | None = None
    weather: bool | list[Literal["temperature_2m_mean", "precipitation_sum"]] | None = None
    held_channels: list[str] | None = None
    controls: list[str] | None = None
    adstock_max_lag: int | None = Field(None, ge=1, le=26)
    draws: int | None = Field(None, ge=50, le=10_000)
    tune: int | None = Field(None, ge=50, le=10_000)
    chains: int | None = Field(None, ge=1, le=8)
    fit_minutes: float | None = Field(None, gt=0, le=600)


@lru_cache(maxsize=1)
def iso4217_codes() -> frozenset[str]:
    """Currency codes tenant.yaml may name (assets/reference/iso4217.txt)."""
    text = (assets_dir() / "reference" / "iso4217.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


class TenantConfig(_Strict):
    timezone: str = "UTC"
    currency: str = "USD"
    kpi: Literal["net_revenue"] = "net_revenue"
    grain: Grain | None = None  # a pin of the model spec's grain; absent: the data decides (weathervane.spec)
    model: ModelPins | None = None
    channels: list[ChannelRule] = Field(default_factory=list)
    planning: Planning = Field(default_factory=Planning)
    autopilot: Autopilot = Field(default_factory=Autopilot)
    replay: Replay = Field(default_factory=Replay)
    audit: Audit = Field(default_factory=Audit)

    @field_validator("currency")
    @classmethod
    def _iso4217(cls, v: str) -> str:
        # printed into every report and plan page: only a known code may get there
        if v not in iso4217_codes():
            shown = repr(v) if len(v) <= 40 else repr(v[:37]) + "..."
            raise ValueError(f"{shown} is not an ISO 4217 currency code (three capital letters such as USD, "
                             "EUR, SEK; assets/reference/iso4217.txt lists them)")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {v!r}") from exc
        # dbt converts with DuckDB's ICU zones, which know fewer names than the host's tzdata
        if _duckdb_rejects("select timezone(?, timestamptz '2000-01-01 00:00:00+00')", v):
            raise ValueError(f"timezone {v!r} is not an IANA zone name DuckDB knows")
        return v


def tenant_dir(root: Path | str, tenant_id: str) -> Path:
    return Path(root) / validate_tenant_id(tenant_id)


def refuse_links(root: Path | str, path: Path | str, *, max_bytes: int | None = None) -> None:
    """Raise TenantConfigError unless every part of `path` below `root` is a plain folder or file.

    A linked tenant folder would read another tenant's files under this id; a FIFO blocks a read forever
    and a link to a device never ends.
    """
    root, path = Path(root), Path(path)
    current, st = root, None
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            st = current.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise TenantConfigError(f"{current}: is a symbolic link; links are refused in the landing zone")
        if current != path and not stat.S_ISDIR(st.st_mode):
            raise TenantConfigError(f"{current}: not a folder")
    if st is None:
        return
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        raise TenantConfigError(f"{current}: not a regular file")
    if max_bytes is not None and stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        raise TenantConfigError(f"{current}: {st.st_size} bytes, more than the {max_bytes} allowed")


def load_tenant_config(root: Path | str, tenant_id: str) -> TenantConfig:
    """Read `<root>/<tenant>/tenant.yaml`; defaults apply when it is absent."""
    root = Path(root)
    path = tenant_dir(root, tenant_id) / "tenant.yaml"
    refuse_links(root, path, max_bytes=TENANT_YAML_MAX_BYTES)
    if not path.exists():
        return TenantConfig()
    if not path.is_file():
        raise TenantConfigError(f"{path}: not a regular file")
    try:
        # O_NONBLOCK: a FIFO swapped in after the check above must not block the read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise TenantConfigError(f"{path}: not a regular file")
            raw = fh.read(TENANT_YAML_MAX_BYTES + 1)
    except OSError as exc:
        raise TenantConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if len(raw) > TENANT_YAML_MAX_BYTES:
        raise TenantConfigError(f"{path}: more than {TENANT_YAML_MAX_BYTES} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise TenantConfigError(f"{path}: not UTF-8 text: {exc}") from exc
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
