"""Posterior response of a fitted weather-aware MMM: spend and weather in, incremental KPI draws out.

One implementation serves the budget allocator, marginal ROAS, response curves and channel contributions. It
re-implements, in NumPy, exactly the fitted graph: spend / channel_scale -> normalised geometric adstock ->
beta * logistic saturation -> * exp(sum_w gamma[c, w] z_w) -> * target_scale.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from weathervane import config
from weathervane.periods import period_start
from weathervane.transforms import media_contribution, standardise_weather

META_ATTR = "weathervane"


def model_path(tenant_id: str, model_id: str, store: Path | str) -> Path:
    return config.tenant_dir(Path(store), tenant_id) / f"{_safe_model_id(model_id)}.nc"


def _safe_model_id(model_id: str) -> str:
    if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
        raise ValueError(f"invalid model id {model_id!r}")
    return model_id


def find_model_file(model_id: str, tenant_id: str | None = None, *, store: Path | str) -> Path:
    base = Path(store)
    if tenant_id is not None:
        path = model_path(tenant_id, model_id, base)
        if path.exists():
            return path
    else:
        hits = sorted(base.glob(f"*/{_safe_model_id(model_id)}.nc"))
        if hits:
            return hits[0]
    raise FileNotFoundError(f"model {model_id!r} not found under {base}")


@dataclass
class PosteriorResponse:
    """Posterior draws of the media parameters of one fitted model.

    Attributes: `channels`, `geos` (the model's cells: geo_id, or `product_key|geo_id`), `weather_vars`,
    `l_max` (adstock lags, in periods), `period` (day/week), `cell_geo` (cell -> geo_id), `weather_stats`
    (geo -> variable -> [daily mean, daily sd]), and arrays alpha[draw, channel], lam[draw, channel],
    beta[draw, geo, channel], gamma[draw, channel, weather], channel_scale[geo, channel], target_scale[geo].
    """

    model_id: str
    channels: list[str]
    geos: list[str]
    weather_vars: list[str]
    l_max: int
    period: str
    cell_geo: dict[str, str]
    weather_stats: dict
    alpha: np.ndarray
    lam: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    channel_scale: np.ndarray
    target_scale: np.ndarray
    observed_spend: np.ndarray  # [time, channel, geo] training spend
    observed_z: np.ndarray  # [time, geo, weather] training weather z
    dates: pd.DatetimeIndex

    @property
    def n_draws(self) -> int:
        return self.alpha.shape[0]

    @classmethod
    def from_idata(cls, idata, model_id: str = "") -> "PosteriorResponse":
        post = idata["posterior"]
        const = idata["constant_data"]
        meta = json.loads(idata.attrs.get(META_ATTR, "{}"))
        channels = [str(c) for c in post["saturation_beta"].coords["channel"].values]
        geos = [str(g) for g in post["saturation_beta"].coords["geo"].values]

        def flat(name: str, dims: tuple[str, ...]) -> np.ndarray:
            da = post[name]
            da = da.stack(sample=("chain", "draw")).transpose("sample", *dims)
            return np.asarray(da.values, dtype=float)

        alpha = _broadcast_channel(flat, "adstock_alpha", post, geos)
        lam = _broadcast_channel(flat, "saturation_lam", post, geos)
        beta = flat("saturation_beta", ("geo", "channel"))
        n = beta.shape[0]
        if "weather_gamma" in post:
            gamma = flat("weather_gamma", ("channel", "weather"))
            weather_vars = [str(w) for w in post["weather_gamma"].coords["weather"].values]
        else:  # a plain model: weather does not modulate media
            weather_vars = list(meta.get("weather_vars", []))
            gamma = np.zeros((n, len(channels), len(weather_vars)))
        # scales may be global (PyMC-Marketing's default) or per geo: broadcast both to the cell grid
        grid = xr.DataArray(np.ones((len(geos), len(channels))), dims=("geo", "channel"),
                            coords={"geo": post["saturation_beta"].coords["geo"].values,
                                    "channel": post["saturation_beta"].coords["channel"].values})
        cs = (const["channel_scale"] * grid).transpose("geo", "channel").values.astype(float)
        ts = (const["target_scale"] * grid.isel(channel=0, drop=True)).transpose("geo").values.astype(float)
        spend = const["channel_data"].transpose("date", "channel", "geo").values.astype(float)
        if "weather_z" in const:
            z = const["weather_z"].transpose("date", "geo", "weather").values.astype(float)
        else:
            z = np.zeros((spend.shape[0], len(geos), len(weather_vars)))
        return cls(
            model_id=model_id or meta.get("model_id", ""), channels=channels, geos=geos, weather_vars=weather_vars,
            l_max=int(meta.get("l_max") or json.loads(idata.attrs.get("adstock", "{}")).get("l_max", 8)), period=meta.get("period", "day"),
            cell_geo=meta.get("cell_geo", {g: g for g in geos}), weather_stats=meta.get("weather_stats", {}),
            alpha=alpha, lam=lam, beta=beta, gamma=gamma, channel_scale=cs, target_scale=ts,
            observed_spend=spend, observed_z=z, dates=pd.DatetimeIndex(const["date"].values),
        )

    @classmethod
    def from_file(cls, path: Path | str) -> "PosteriorResponse":
        return cls.from_idata(read_model_file(path), model_id=Path(path).stem)

    @classmethod
    def from_model_id(cls, model_id: str, tenant_id: str | None = None, *,
                      store: Path | str) -> "PosteriorResponse":
        return cls.from_file(find_model_file(model_id, tenant_id, store=store))

    def recent_spend(self, periods: int | None = None) -> np.ndarray:
        """The last `periods` observed periods of spend [time, channel, geo] (default l_max - 1): prepend these to
        a future plan so carry-over from recent spend is counted."""
        periods = self.l_max - 1 if periods is None else periods
        return self.observed_spend[len(self.observed_spend) - periods:] if periods else self.observed_spend[:0]

    def incremental_kpi(self, spend: np.ndarray, weather_z: np.ndarray | None = None, *, n_history: int = 0,
                        draws: int | None = None, seed: int = 0) -> np.ndarray:
        """Posterior samples of each channel's incremental KPI (currency) per period and geo.

        Parameters
        ----------
        spend : array [time, channel, geo], currency per period, channels and geos in `self.channels` /
            `self.geos` order. Its first `n_history` rows are observed spend prepended for adstock carry-over
            (e.g. `self.recent_spend()`); the rest is the plan.
        weather_z : array [time, geo, weather] (weather in `self.weather_vars` order), each variable standardised
            with its geo's daily mean and sd (`self.standardise_weather`); None means average weather (z = 0).
        n_history : leading rows of `spend` that are history; they are dropped from the result.
        draws : use this many posterior draws (evenly thinned); None uses all.

        Returns
        -------
        array [draw, time - n_history, channel, geo]: contribution of each channel in each period, in KPI currency,
        including carry-over from spend earlier in the array. Spend before the array is taken as zero.
        """
        spend = np.asarray(spend, dtype=float)
        if spend.ndim != 3 or spend.shape[1:] != (len(self.channels), len(self.geos)):
            raise ValueError(f"spend must be [time, {len(self.channels)} channels, {len(self.geos)} geos], "
                             f"got shape {spend.shape}")
        T = spend.shape[0]
        if weather_z is None:
            weather_z = np.zeros((T, len(self.geos), len(self.weather_vars)))
        weather_z = np.asarray(weather_z, dtype=float)
        if weather_z.shape != (T, len(self.geos), len(self.weather_vars)):
            raise ValueError(f"weather_z must be [{T}, {len(self.geos)} geos, {len(self.weather_vars)} weather], "
                             f"got shape {weather_z.shape}")
        idx = self._draw_index(draws)
        alpha, lam, beta, gamma = self.alpha[idx], self.lam[idx], self.beta[idx], self.gamma[idx]
        x = (spend / self.channel_scale.T[None])  # [T, C, G]
        x = np.where(np.isfinite(x), x, 0.0)
        contribution = media_contribution(
            x, alpha[:, None, :, None], lam[:, None, :, None], beta.transpose(0, 2, 1)[:, None], self.l_max,
            np.einsum("scw,tgw->stcg", gamma, weather_z))  # [S, T, C, G]
        out = contribution * self.target_scale[None, None, None, :]
        return out[:, n_history:]

    def under_prior(self, model, draws: int = 300, seed: int = 0) -> "PosteriorResponse":
        """The same response with the media parameters drawn from the fitted PyMC model's priors (same spend,
        weather and scales): what the model would say before seeing the data."""
        import warnings

        import pymc as pm

        names = ["adstock_alpha", "saturation_lam", "saturation_beta"]
        if "weather_gamma" in model.named_vars:
            names.append("weather_gamma")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prior = pm.sample_prior_predictive(draws=draws, model=model, var_names=names, random_seed=seed)["prior"]

        beta = prior["saturation_beta"].stack(sample=("chain", "draw")).sel(
            geo=self.geos, channel=self.channels).transpose("sample", "geo", "channel").values
        sel = {"channel": self.channels}
        out = dict(alpha=prior["adstock_alpha"].stack(sample=("chain", "draw")).sel(**sel).transpose("sample", "channel").values,
                   lam=prior["saturation_lam"].stack(sample=("chain", "draw")).sel(**sel).transpose("sample", "channel").values,
                   beta=np.asarray(beta, dtype=float))
        if "weather_gamma" in prior:
            out["gamma"] = prior["weather_gamma"].stack(sample=("chain", "draw")).sel(
                channel=self.channels, weather=self.weather_vars).transpose("sample", "channel", "weather").values
        else:
            out["gamma"] = np.zeros((beta.shape[0], len(self.channels), len(self.weather_vars)))
        from dataclasses import replace

        return replace(self, **{k: np.asarray(v, dtype=float) for k, v in out.items()})

    def _draw_index(self, draws: int | None) -> np.ndarray:
        if draws is None or draws >= self.n_draws:
            return np.arange(self.n_draws)
        return np.unique(np.linspace(0, self.n_draws - 1, draws).round().astype(int))

    def multiplier_per_sd(self) -> np.ndarray:
        """exp(gamma): [draw, channel, weather], the effect at +1 sd of the geo's weather over the effect at its mean."""
        return np.exp(self.gamma)

    def standardise_weather(self, daily: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
        """Daily weather rows (date, geo_id, weather columns) -> z [time, geo, weather] for the model's periods
        starting at `dates`, with each geo's stored daily mean and sd; missing values count as average weather."""
        daily = daily.copy()
        daily["date"] = pd.to_datetime(daily["date"])
        daily["date"] = period_start(daily["date"], self.period)
        z = np.zeros((len(dates), len(self.geos), len(self.weather_vars)))
        for j, cell in enumerate(self.geos):
            geo = self.cell_geo.get(cell, cell)
            g = daily[daily["geo_id"] == geo]
            for k, var in enumerate(self.weather_vars):
                mean, sd = self.weather_stats.get(geo, {}).get(var, [0.0, 1.0])
                if g.empty or var not in g:
                    continue
                zs = pd.Series(standardise_weather(g[var].astype(float).to_numpy(), mean, sd)).groupby(
                    g["date"].to_numpy()).mean()
                z[:, j, k] = zs.reindex(pd.DatetimeIndex(dates)).fillna(0.0).to_numpy()
        return z


def _broadcast_channel(flat, name: str, post, geos: list[str]) -> np.ndarray:
    dims = tuple(d for d in post[name].dims if d not in ("chain", "draw"))
    arr = flat(name, dims)
    if dims == ("channel",):
        return arr
    raise ValueError(f"unexpected dims {dims} for {name}")


def read_model_file(path: Path | str):
    """A saved model's NetCDF as an in-memory DataTree (the file is closed again: a fit may replace it)."""
    tree = xr.open_datatree(path)
    try:
        return tree.load()
    finally:
        tree.close()


def open_model(model_id: str, tenant_id: str | None = None, *, store: Path | str):
    """The one loader of a stored posterior, by tenant and model id: (DataTree, PosteriorResponse)."""
    tree = read_model_file(find_model_file(model_id, tenant_id, store=store))
    return tree, PosteriorResponse.from_idata(tree, model_id=model_id)


def load_response(model_id: str, tenant_id: str | None = None, *, store: Path | str) -> PosteriorResponse:
    """The posterior response of a saved model (see `PosteriorResponse.incremental_kpi`)."""
    return PosteriorResponse.from_model_id(model_id, tenant_id, store=store)
