"""Weather modulation of media effects, as a PyMC-Marketing mu-effect.

PyMC-Marketing builds `channel_contribution[date, geo, channel]` (adstock, then logistic saturation, times beta).
This effect multiplies each channel's contribution by exp(sum_w gamma[channel, w] * z_w[date, geo]) by adding
channel_contribution * (exp(gamma . z) - 1) to the mean, so the library's media graph, priors, lift-test
calibration and plots stay untouched and the weather terms are the only custom PyMC.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pymc.dims as pmd
import pytensor.xtensor as ptx
import xarray as xr
from pydantic import Field, InstanceOf
from pymc_extras.prior import Prior
from pytensor.xtensor.type import XTensorVariable

from pymc_marketing.mmm.additive_effect import DataVarMuEffect, IncrementalitySpec, MuEffect

WEATHER_DIM = "weather"
WEATHER_DATA = "weather_z"
GAMMA_NAME = "weather_gamma"
MODULATED_CONTRIBUTION = "weather_channel_contribution"
MULTIPLIER = "weather_channel_multiplier"  # exp(gamma . z)[date, geo, channel]; named in the graph, not stored


def default_gamma_prior() -> Prior:
    # Centred at zero: without evidence a channel's effect does not depend on the weather. sigma 0.3 keeps a
    # multiplier per sd within roughly [0.55, 1.8] a priori.
    return Prior("Normal", mu=0.0, sigma=0.3, dims=("channel", WEATHER_DIM))


class WeatherModulation(DataVarMuEffect):
    """Adds `channel_contribution * (exp(gamma[channel, weather] . z[date, geo, weather]) - 1)` to mu.

    `z` is the dataset variable `weather_z` (dims date, geo, weather): each weather variable standardised within
    its geo over its daily history. `weather_channel_contribution` (date, geo, channel) is the modulated media
    contribution, the quantity ROAS and the response API are based on.
    """

    data_vars: list[str] = Field(default_factory=lambda: [WEATHER_DATA], min_length=1)
    prefix: str = "weather"
    gamma_prior: InstanceOf[Prior] = Field(default_factory=default_gamma_prior)

    @property
    def contribution_var_name(self) -> str:
        return f"{self.prefix}_effect_contribution"

    def to_dict(self) -> dict[str, Any]:
        return {"data_vars": list(self.data_vars), "prefix": self.prefix, "gamma_prior": self.gamma_prior.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WeatherModulation":
        from pymc_extras.deserialize import deserialize

        return cls(
            data_vars=data.get("data_vars", [WEATHER_DATA]),
            prefix=data.get("prefix", "weather"),
            gamma_prior=deserialize(data["gamma_prior"]) if "gamma_prior" in data else default_gamma_prior(),
        )

    def incrementality_spec(self) -> IncrementalitySpec:
        # The modulation is pointwise in time: it carries spend only as far as the model's own adstock does.
        return IncrementalitySpec(additional_carryover_lags=0, evaluation_mode="window")

    def create_data(self, mmm) -> None:
        name = self.data_vars[0]
        if name not in mmm.xarray_dataset:
            # MMM.load rebuilds from idata.fit_data, which keeps only (date, geo) columns: take the weather z the
            # model was fitted on from its constant_data, aligned to the rebuilt dates and geos.
            saved = getattr(getattr(mmm, "idata", None), "constant_data", None)
            if saved is None or name not in saved:
                raise KeyError(f"{name}: not in the data and not saved with the model")
            ds = mmm.xarray_dataset
            mmm.xarray_dataset[name] = saved[name].sel(date=ds["date"].values, geo=ds["geo"].values).transpose(
                "date", "geo", WEATHER_DIM)
        weather = mmm.xarray_dataset[name].coords[WEATHER_DIM].values
        if WEATHER_DIM not in mmm.model.coords:
            mmm.model.add_coord(WEATHER_DIM, weather)
        super().create_data(mmm)

    def create_effect(self, mmm) -> XTensorVariable:
        model: pm.Model = mmm.model
        z = model[self.data_vars[0]]
        contribution = model["channel_contribution"]
        gamma = self.gamma_prior.create_variable(GAMMA_NAME, xdist=True)
        multiplier = ptx.math.exp((gamma * z).sum(dim=WEATHER_DIM)).transpose("date", *mmm.dims, "channel")
        # Named (not a Deterministic, so not kept per draw) for the weather-aware lift-test likelihood to index.
        multiplier.name = MULTIPLIER
        model.add_named_variable(multiplier, dims=multiplier.type.dims)
        modulated = pmd.Deterministic(
            MODULATED_CONTRIBUTION, (contribution * multiplier).transpose("date", *mmm.dims, "channel")
        )
        return pmd.Deterministic(
            self.contribution_var_name,
            (modulated - contribution).sum(dim="channel").transpose("date", *mmm.dims),
        )

    def set_data(self, mmm, model: pm.Model, X: xr.Dataset) -> None:
        super().set_data(mmm, model, X)


CENTRING_NAME = "centring"


class CentredLevel(MuEffect):
    """Makes the intercept the KPI's level at the panel's typical spend and controls, not at zero spend.

    Adds the constant -(sum_c rho[geo, c] * u[geo, c] + sum_k gamma_control[k] * mean_k[geo]) to mu, where
    rho * u is each channel's contribution at its typical spend (weathervane.mmm.model.ReturnAtTypicalSpend)
    and mean_k the control's mean over the fitted periods. The mean function is the same (intercept_contribution
    plus this term is the old intercept), in other coordinates: the level is pinned by the data's mean alone, so
    the sampler no longer trades it against every channel's return and the trend's slope (the weakest
    directions of the uncentred model). The term belongs to the baseline: it does not move with spend."""

    prefix: str = CENTRING_NAME
    unit: list[list[float]] = Field(default_factory=list)  # [geo][channel]; empty: no media term
    control_mean: list[list[float]] = Field(default_factory=list)  # [geo][control]; empty: no control term
    roas_name: str = "media_log_roas"
    weather_data: str = WEATHER_DATA

    def create_data(self, mmm) -> None:
        pass

    def create_effect(self, mmm) -> XTensorVariable:
        model: pm.Model = mmm.model
        geo_dims = tuple(mmm.dims)
        offset = None
        if self.unit:
            rho = ptx.math.exp(_xt(model, self.roas_name))
            term = (rho * ptx.as_xtensor(np.asarray(self.unit), dims=(*geo_dims, "channel"))).sum(dim="channel")
            offset = term
        if self.control_mean and "gamma_control" in model.named_vars:
            gamma = _xt(model, "gamma_control")
            term = (gamma * ptx.as_xtensor(np.asarray(self.control_mean), dims=(*geo_dims, "control"))).sum(dim="control")
            offset = term if offset is None else offset + term
        if offset is None:
            offset = ptx.as_xtensor(np.zeros(len(model.coords[geo_dims[0]])), dims=geo_dims)
        offset = -offset
        weather = self._weather_offset(mmm)
        if weather is not None:
            offset = (offset + weather).transpose("date", *geo_dims)
        return pmd.Deterministic(self.contribution_var_name, offset)

    def _weather_offset(self, mmm):
        """-sum_c gamma[c, w] * rho[geo, c] * u[geo, c] * z_w for each weather variable w that is also a control
        (`<w>_z`): the weather control's coefficient becomes the weather's whole first-order effect at typical
        spend, and weather_gamma only how a channel's effect departs from it. Otherwise the two are nearly
        collinear (a channel's contribution moves far less than the weather does)."""
        model: pm.Model = mmm.model
        if not self.unit or GAMMA_NAME not in model.named_vars or "gamma_control" not in model.named_vars:
            return None
        controls = [str(c) for c in model.coords.get("control", ())]
        weather = [str(w) for w in model.coords.get(WEATHER_DIM, ())]
        pairs = [(w, controls.index(f"{w}_z")) for w in weather if f"{w}_z" in controls]
        if not pairs:
            return None
        geo_dims = tuple(mmm.dims)
        typical = ptx.math.exp(_xt(model, self.roas_name)) * ptx.as_xtensor(np.asarray(self.unit),
                                                                            dims=(*geo_dims, "channel"))
        first_order = (_xt(model, GAMMA_NAME) * typical).sum(dim="channel")  # [geo, weather]
        z = _xt(model, self.weather_data)
        return -(first_order * z).sum(dim=WEATHER_DIM)

    def set_data(self, mmm, model: pm.Model, X: xr.Dataset) -> None:
        pass


def _xt(model: pm.Model, name: str) -> XTensorVariable:
    var = model[name]
    return var if isinstance(var, XTensorVariable) else ptx.as_xtensor(var, dims=model.named_vars_to_dims[name])
