"""Building and fitting the weather-aware PyMC-Marketing MMM (and its plain twin for benchmarks)."""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pymc_extras.prior import Prior

from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation
from pymc_marketing.mmm.scaling import DataDerivedScaling, Scaling

from weathervane.mmm.data import ModelData
from weathervane.mmm.effects import MULTIPLIER, CentredLevel, WeatherModulation
from weathervane.spec import CHAINS, DRAWS, TUNE, adstock_lags

Method = Literal["nuts", "map", "advi"]


@dataclass
class FitSettings:
    """How to fit. `nuts` samples with nutpie (or PyMC's own NUTS, whose compiled C is shared with MAP fits and
    is quicker to start on tiny panels); `map` and `advi` are fast previews."""

    method: Method = "nuts"
    nuts_sampler: Literal["nutpie", "pymc"] = "nutpie"
    draws: int = DRAWS
    tune: int = TUNE
    chains: int = CHAINS
    cores: int | None = None  # chains sampled in parallel; None: min(chains, CPUs)
    # nutpie's mass-matrix adaptation. "low_rank" also learns the strongest posterior correlations and halves the
    # time per fit, but on the benchmark panel it left the weather model at bulk ESS 23 after 300 tuning steps
    # (diag: 97); see bench/bench_fit.py --adaptation.
    adaptation: Literal["diag", "low_rank"] = "diag"
    target_accept: float = 0.9
    seed: int = 0
    holdout_weeks: int = 8  # scored before the final fit; 0 skips the holdout
    max_rhat: float = 1.05
    min_ess_bulk: float = 200.0
    max_divergences: int = 0
    # A NUTS fit that misses the gate is refitted this many times with tuning and draws times retry_scale
    # (draws capped at retry_max_draws) before it is stored as failed.
    retries: int = 1
    retry_scale: float = 2.0
    retry_max_draws: int = 2000
    # Smaller steps: the cure for the few divergences a weakly identified channel leaves. On the small,
    # test-less robustness world they sit on the ridge where a small channel's saturation_lam runs into its tail
    # (the curve flat over its spend, its beta trading with the intercept), not in the per-geo spread of beta
    # (already non-centred); 0.95 still left 1 divergence in 2000 draws there, 0.99 none (docs/robustness.md).
    retry_target_accept: float = 0.99
    yearly_seasonality: int = 2
    # Adstock length in periods; None: the period's default, adstock_lags(period).
    adstock_max_lag: int | None = None
    # The peak-season control (data._controls); off reproduces earlier fits. See docs/robustness.md.
    peak_season: bool = True
    weather: bool = True
    advi_iterations: int = 20_000
    posterior_draws_map: int = 1  # a MAP point is one draw

    def to_dict(self) -> dict:
        return asdict(self)

    def longer(self) -> "FitSettings":
        """The retry's settings: longer tuning and more draws (bounded), another seed."""
        from dataclasses import replace

        return replace(self, tune=int(round(self.tune * self.retry_scale)),
                       draws=min(int(round(self.draws * self.retry_scale)), max(self.retry_max_draws, self.draws)),
                       target_accept=max(self.target_accept, self.retry_target_accept), seed=self.seed + 1)


def model_lags(period: str, settings: FitSettings) -> int:
    """The adstock length a fit uses: the setting when given, else the period's default."""
    lags = settings.adstock_max_lag if settings.adstock_max_lag is not None else adstock_lags(period)
    if int(lags) < 1:
        raise ValueError(f"adstock_max_lag must be at least 1 period, got {lags}")
    return int(lags)


# Priors relative to the data, never to a currency. A channel's return at its typical spend is written as
# rho * R, where R = the panel's KPI over its paid spend (all channels): rho is the share of the KPI paid media
# would drive if every channel earned like this one. A priori rho ~ 0.3 (media drives ~30% of the KPI), within a
# factor of e either way (90%: 6% to 150%); on a brand that spends a fifth of its revenue this is the ROAS prior
# of 1.5 the model had in currency terms, and rescaling spend or revenue rescales it with them.
PRIOR_MEDIA_SHARE = 0.3
PRIOR_LOG_ROAS_SD = 1.0
# Saturation a priori: at its mean spend a channel sits in the concave part of its curve, lam * mean = 1.5
# (the curve at 64% of its ceiling), with a 60% coefficient of variation.
PRIOR_LAM_AT_MEAN = 1.5
PRIOR_LAM_CV = 0.6
# Revenue per unit of paid spend outside this range is not a brand's: spend under 0.5% of revenue, or above it.
PLAUSIBLE_KPI_PER_SPEND = (1.0, 200.0)


def scaled_mean_spend(data: ModelData) -> np.ndarray:
    """[cell, channel] mean spend over the cell's max spend (the model's channel scaling); 0 without spend."""
    spend_max = data.spend.max(axis=0)
    return np.divide(data.spend.mean(axis=0), spend_max, out=np.zeros_like(spend_max), where=spend_max > 0)


def mean_scaled_spend(data: ModelData) -> np.ndarray:
    """Per channel, the mean scaled spend averaged over the cells that have spend (0.5 where none has)."""
    x = scaled_mean_spend(data)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(data.spend.max(axis=0) > 0, x, np.nan), axis=0)
    return np.where(np.isfinite(mean) & (mean > 0), mean, 0.5)


def lam_prior_mean(data: ModelData) -> np.ndarray:
    """saturation_lam's prior mean per channel: PRIOR_LAM_AT_MEAN at the channel's mean spend.

    PyMC-Marketing scales spend by its per-cell maximum, so the same curvature at typical spend needs a larger
    lam for a flighted channel (spiky maximum) than for an always-on one; a single unit-free prior would make
    the flighted channel look nearly linear and, given its marginal return, understate its average return."""
    return PRIOR_LAM_AT_MEAN / mean_scaled_spend(data)


def kpi_per_spend(data: ModelData) -> float:
    """R: the panel's KPI per unit of paid spend, the unit against which channel returns are judged a priori."""
    spend, kpi = float(data.spend.sum()), float(data.kpi.sum())
    return kpi / spend if spend > 0 and kpi > 0 else 1.0


def data_warnings(data: ModelData) -> list[str]:
    """Plain sentences on inputs a brand plausibly does not have (the fit still runs: its estimates do not depend
    on the units, but a ROAS read in currency is only as right as the units of spend and revenue)."""
    out = []
    spend, kpi = float(data.spend.sum()), float(data.kpi.sum())
    lo, hi = PLAUSIBLE_KPI_PER_SPEND
    if spend > 0 and kpi > 0 and not lo <= kpi / spend <= hi:
        out.append(f"revenue per unit of paid spend is {kpi / spend:.3g}, outside the {lo:g} to {hi:g} a brand "
                   "plausibly has: check that spend and revenue are in the same currency unit (ROAS is reported "
                   "in the units delivered)")
    elif kpi <= 0:
        out.append("the KPI sums to zero or less over the panel: returns cannot be judged against it")
    return out


def typical_spend_terms(data: ModelData) -> tuple[np.ndarray, np.ndarray]:
    """(x, u), both [cell, channel]: x the cell's typical (mean) spend in the model's scaled units, u the factor
    that turns a relative return rho into the scaled coefficient at that spend, beta * sat(lam * x) = rho * u
    (u = R * mean spend / max KPI of the cell). A cell without spend of a channel borrows the channel's averages
    over the cells that have it, so a plan that opens it is priced like them."""
    spend_max = data.spend.max(axis=0)
    has = spend_max > 0
    x = scaled_mean_spend(data)
    target_max = np.abs(data.kpi).max(axis=0)
    u = kpi_per_spend(data) * data.spend.mean(axis=0) / np.where(target_max > 0, target_max, 1.0)[:, None]
    with np.errstate(invalid="ignore"):
        x_fill = np.nanmean(np.where(has, x, np.nan), axis=0)
        u_fill = np.nanmean(np.where(has, u, np.nan), axis=0)
    x = np.where(has, x, np.where(np.isfinite(x_fill), x_fill, 0.5)[None, :])
    u = np.where(has, u, np.where(np.isfinite(u_fill), u_fill, 0.0)[None, :])
    return x, u


ROAS_NAME = "media_log_roas"  # log rho[geo, channel], the free parameter behind saturation_beta


class ReturnAtTypicalSpend:
    """saturation_beta[geo, channel] as a deterministic of each cell's return at its typical spend and the
    channel's curvature: beta = exp(log_rho) * u / sat(lam * x), with x, u from `typical_spend_terms`.

    With beta and lam free (PyMC-Marketing's parameterisation) a flatter curve and a higher ceiling describe the
    same data, and the sampler crawls along that ridge (a small channel's lam running into its tail while beta
    trades against it). Here the return at typical spend is one parameter and lam only bends the curve around
    it. `log_rho` is the `roas` prior (partially pooled across geos, non-centred); saturation_lam must be built
    first (PyMC-Marketing creates a transformation's parameters in its function's order: lam, then beta)."""

    def __init__(self, roas: Prior, x_typical, unit, lam_name: str = "saturation_lam",
                 dims: tuple[str, ...] = ("geo", "channel")):
        self.roas = roas
        self.x_typical = np.asarray(x_typical, dtype=float).tolist()
        self.unit = np.asarray(unit, dtype=float).tolist()
        self.lam_name = lam_name
        self.dims = tuple(dims)

    def create_variable(self, name: str, xdist: bool = False):
        import pymc as pm
        import pymc.dims as pmd
        import pytensor.xtensor as ptx

        model = pm.modelcontext(None)
        lam = model[self.lam_name]
        lam = lam if hasattr(lam.type, "dims") else ptx.as_xtensor(lam, dims=model.named_vars_to_dims[self.lam_name])
        log_rho = self.roas.create_variable(ROAS_NAME, xdist=True)
        x = ptx.as_xtensor(np.asarray(self.x_typical), dims=self.dims)
        u = ptx.as_xtensor(np.asarray(self.unit), dims=self.dims)
        sat = ptx.math.tanh(lam * x / 2)  # logistic saturation at typical spend
        beta = pmd.Deterministic(name, (ptx.math.exp(log_rho) * u / sat).transpose(*self.dims))
        return beta if xdist else beta.values

    def to_dict(self) -> dict:
        return {"roas": self.roas.to_dict(), "x_typical": self.x_typical, "unit": self.unit,
                "lam_name": self.lam_name, "dims": list(self.dims)}

    @classmethod
    def from_dict(cls, data: dict) -> "ReturnAtTypicalSpend":
        from pymc_extras.deserialize import deserialize

        return cls(roas=deserialize(data["roas"]), x_typical=data["x_typical"], unit=data["unit"],
                   lam_name=data.get("lam_name", "saturation_lam"), dims=tuple(data.get("dims", ("geo", "channel"))))


class WhitenedControls:
    """gamma_control ~ Normal(0, sigma) per control, sampled in coordinates that the data leave roughly
    uncorrelated: gamma = W z with z ~ MvNormal(0, sigma^2 W^-1 W^-T), so gamma's prior is exactly the iid
    Normal. W W^T approximates gamma's posterior covariance from the controls alone, (X'X / s^2 + 1 / sigma^2)^-1
    with X the controls centred per cell and s a rough noise scale; a wrong s costs speed, never the answer.
    Near-collinear controls (a promotion flag and its depth, the trend and the season) otherwise leave the
    sampler a long narrow ridge it can only cross in tiny steps."""

    def __init__(self, sigma: float, whitener, dims: tuple[str, ...] = ("control",)):
        self.sigma = float(sigma)
        self.whitener = np.asarray(whitener, dtype=float).tolist()
        self.dims = tuple(dims)

    def create_variable(self, name: str, xdist: bool = False):
        import pymc as pm
        import pytensor.tensor as pt
        import pytensor.xtensor as ptx

        w = np.asarray(self.whitener)
        w_inv = np.linalg.inv(w)
        z = pm.MvNormal(f"{name}_white", mu=np.zeros(len(w)), cov=self.sigma**2 * w_inv @ w_inv.T, dims=self.dims)
        gamma = pm.Deterministic(name, pt.dot(pt.as_tensor(w), z), dims=self.dims)
        return ptx.as_xtensor(gamma, dims=self.dims) if xdist else gamma

    def to_dict(self) -> dict:
        return {"sigma": self.sigma, "whitener": self.whitener, "dims": list(self.dims)}

    @classmethod
    def from_dict(cls, data: dict) -> "WhitenedControls":
        return cls(sigma=data["sigma"], whitener=data["whitener"], dims=tuple(data.get("dims", ("control",))))


PRIOR_CONTROL_SD = 0.5


def control_whitener(data: ModelData, sigma: float = PRIOR_CONTROL_SD) -> np.ndarray:
    """W for WhitenedControls: the Cholesky factor of (X'X / s^2 + I / sigma^2)^-1, X [period x cell, control]
    the controls (centred per cell, as CentredLevel centres them) and s half the within-cell sd of the KPI
    over its maximum (the model's scaled units)."""
    x = np.stack(list(data.controls.values()), axis=-1)  # [date, cell, control]
    x = (x - x.mean(axis=0, keepdims=True)).reshape(-1, x.shape[-1])
    y = data.kpi / np.where(np.abs(data.kpi).max(axis=0) > 0, np.abs(data.kpi).max(axis=0), 1.0)
    s = max(0.5 * float(np.mean(y.std(axis=0))), 1e-3)
    precision = x.T @ x / s**2 + np.eye(x.shape[-1]) / sigma**2
    return np.linalg.cholesky(np.linalg.inv(precision))


def _register_serialization() -> None:
    """MMM.load rebuilds the model from its saved config: both registries must know the factory."""
    from pymc_extras.deserialize import register_deserialization

    from pymc_marketing.serialization import serialization

    for cls in (ReturnAtTypicalSpend, WhitenedControls):
        key = f"{cls.__module__}.{cls.__qualname__}"
        serialization.register(cls)
        register_deserialization(lambda d, key=key: isinstance(d, dict) and d.get("__type__") == key, cls.from_dict)


_register_serialization()


def _head(data: ModelData, stop: int | None) -> ModelData:
    """The panel's first `stop` periods (all when None): priors are set from what the fit sees."""
    if stop is None or stop >= data.n_periods:
        return data
    from dataclasses import replace

    return replace(data, dates=data.dates[:stop], spend=data.spend[:stop], kpi=data.kpi[:stop],
                   controls={k: v[:stop] for k, v in data.controls.items()}, weather_z=data.weather_z[:stop])


def model_config(data: ModelData, settings: FitSettings) -> dict:
    """Priors, all relative to the data. saturation_beta comes from each cell's return at typical spend
    (ReturnAtTypicalSpend): log rho per geo around a channel-level location (partial pooling across geos,
    non-centred so the sampler does not meet a funnel where geos agree); carry-over and saturation shape are
    shared by all geos, where per-geo data cannot tell them apart. Targets and spend are scaled per geo, so the
    model itself does not see the units; R carries them into the return prior."""
    x, u = typical_spend_terms(data)
    lam_mean = lam_prior_mean(data)
    if len(data.cells) > 1:
        roas = Prior(
            "Normal",
            mu=Prior("Normal", mu=float(np.log(PRIOR_MEDIA_SHARE)), sigma=PRIOR_LOG_ROAS_SD, dims="channel"),
            # one spread of returns across geos, shared by the channels: every geo x channel offset informs it
            sigma=Prior("HalfNormal", sigma=0.2),
            dims=("geo", "channel"), centered=False,
        )
    else:
        # one market: a spread across geos has nothing to inform it, and the channel location and the lone geo's
        # offset would only be known through their sum (a ridge the sampler diverges on)
        roas = Prior("Normal", mu=float(np.log(PRIOR_MEDIA_SHARE)), sigma=PRIOR_LOG_ROAS_SD, dims=("geo", "channel"))
    cfg = {
        "intercept": Prior("Normal", mu=0.4, sigma=0.4, dims="geo"),
        "likelihood": Prior("Normal", sigma=Prior("HalfNormal", sigma=0.2, dims="geo"), dims=("date", "geo")),
        "adstock_alpha": Prior("Beta", alpha=1, beta=3, dims="channel"),
        "saturation_lam": Prior("Gamma", mu=lam_mean.tolist(), sigma=(PRIOR_LAM_CV * lam_mean).tolist(),
                                dims="channel"),
        "saturation_beta": ReturnAtTypicalSpend(roas, x, u),
        "gamma_control": (WhitenedControls(PRIOR_CONTROL_SD, control_whitener(data)) if data.controls
                          else Prior("Normal", mu=0, sigma=PRIOR_CONTROL_SD, dims="control")),
        "gamma_fourier": Prior("Laplace", mu=0, b=0.2, dims="fourier_mode"),
    }
    return cfg


def build_mmm(data: ModelData, settings: FitSettings, *, weather: bool | None = None,
              stop: int | None = None) -> MMM:
    """An (unbuilt) PyMC-Marketing MMM over dims ("geo",) whose geo coordinate is the grain cell, with priors
    from the first `stop` periods (those it will be fitted on)."""
    weather = settings.weather if weather is None else weather
    cfg = model_config(_head(data, stop), settings)
    n_years = (data.dates[-1] - data.dates[0]).days / 365.25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        mmm = MMM(
            date_column="date",
            target_column="kpi",
            channel_columns=list(data.channels),
            dims=("geo",),
            adstock=GeometricAdstock(l_max=model_lags(data.period, settings)),
            saturation=LogisticSaturation(),
            control_columns=list(data.controls) or None,
            yearly_seasonality=settings.yearly_seasonality if n_years >= 1.0 and settings.yearly_seasonality else None,
            model_config=cfg,
            # Per-geo scaling: geos of different size get comparable betas, so pooling them across geos
            # shrinks their returns towards each other, not their absolute effects (a big state's towards a
            # small state's).
            scaling=Scaling(target=DataDerivedScaling(method="max", dims=()),
                            channel=DataDerivedScaling(method="max", dims=())),
            sampler_config={"nuts_sampler": settings.nuts_sampler},
        )
    if weather and len(data.weather_vars) > 0:  # a table without weather gets no weather terms
        mmm.add_mu_effect(WeatherModulation())
    mmm.add_mu_effect(centring(_head(data, stop)))
    return mmm


def centring(data: ModelData) -> CentredLevel:
    """The intercept's centring term (CentredLevel) for the periods the model is fitted on."""
    _, u = typical_spend_terms(data)
    means = [[float(v[:, j].mean()) for v in data.controls.values()] for j in range(len(data.cells))]
    return CentredLevel(unit=u.tolist(), control_mean=means if data.controls else [], roas_name=ROAS_NAME)


def sample_kwargs(settings: FitSettings) -> dict:
    if settings.method == "nuts":
        extra = {"nuts_sampler_kwargs": {"adaptation": settings.adaptation}} if settings.nuts_sampler == "nutpie" else {}
        return dict(method="mcmc", draws=settings.draws, tune=settings.tune, chains=settings.chains, **extra,
                    target_accept=settings.target_accept, nuts_sampler=settings.nuts_sampler, random_seed=settings.seed,
                    progressbar=False,
                    cores=settings.cores or max(1, min(settings.chains, os.cpu_count() or 1)))
    if settings.method == "map":
        return dict(method="map", random_seed=settings.seed, progressbar=False)
    if settings.method == "advi":
        return dict(method="advi", random_seed=settings.seed, progressbar=False, n=settings.advi_iterations,
                    sample_kwargs={"draws": settings.draws})
    raise ValueError(f"unknown fit method {settings.method!r}: use nuts, map or advi")


@dataclass
class FitResult:
    mmm: MMM
    seconds: float
    lift_tests: int = 0
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # data_warnings: inputs a brand plausibly does not have


def fit_mmm(data: ModelData, settings: FitSettings, *, stop: int | None = None, weather: bool | None = None,
            lift_tests: pd.DataFrame | None = None) -> FitResult:
    """Build and fit on the first `stop` periods (all when None); lift tests calibrate the saturation curves."""
    if not settings.peak_season and "peak_season" in data.controls:
        from dataclasses import replace

        data = replace(data, controls={k: v for k, v in data.controls.items() if k != "peak_season"})
    mmm = build_mmm(data, settings, weather=weather, stop=stop)
    ds = data.to_dataset(stop)
    t0 = time.perf_counter()
    mmm.build_model(ds)
    n_lift = 0
    if lift_tests is not None and not lift_tests.empty:
        n_lift = add_lift_tests(mmm, lift_tests, ds)
    kwargs = sample_kwargs(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, RuntimeWarning))
        mmm.fit(ds, **kwargs)
    return FitResult(mmm=mmm, seconds=time.perf_counter() - t0, lift_tests=n_lift,
                     warnings=data_warnings(_head(data, stop)))


def add_lift_tests(mmm: MMM, lift_tests: pd.DataFrame, ds: xr.Dataset) -> int:
    """Lift-test likelihood; returns the number of (test, cell) measurements used.

    Per-period rows (from `lift_measurements(..., per_period=True)`, grouped by `test`): a test's model lift is
    the sum over its window of beta * (sat(x_t + a_t) - sat(x_t)) * exp(gamma . z_t), with each period's own
    spend and weather (no weather terms: a factor of 1), observed against the measured total. a_t is the added
    spend as the adstock carries it into period t, sum_{j<=t} w_{t-j} dx_j over the window (w the channel's
    normalised geometric weights): a test measures the lift inside its window, and the part of the added spend
    that lands after it is not in the measurement. Read as if all of it landed inside (PyMC-Marketing's lift
    likelihood, and ours before), a four-week test on a slow channel reads its return at about half, and the
    model learns a curve far flatter than the channel's (calibration bench: meta's marginal return 1.09 against
    a true 2.0 after a test that measured 1,389 for 1,475 of added spend). PyMC-Marketing's likelihood also
    evaluates one average spend at average weather: with flighted spend the curve at the average spend is not
    the average of the curve (off by -18% to +5% on the simulator's tests), and a test run in a hot month credits
    the heat to the channel's baseline effect."""
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.xtensor import as_xtensor

    from pymc_marketing.mmm.lift_test import scale_lift_measurements

    if "test" not in lift_tests.columns:
        raise ValueError("lift tests need per-period rows: lift_measurements(..., per_period=True)")
    dates = pd.DatetimeIndex(ds["date"].values)
    rows = lift_tests[pd.to_datetime(lift_tests["date"]).isin(dates)].reset_index(drop=True)
    whole = lift_tests.groupby("test")["date"].size()
    rows = rows[rows.groupby("test")["date"].transform("size").to_numpy() == whole.loc[rows["test"]].to_numpy()]
    if rows.empty:  # tests whose window the fit does not cover entirely are left out (holdout fits)
        return 0
    rows = rows.assign(date=pd.to_datetime(rows["date"])).reset_index(drop=True)
    scaled = scale_lift_measurements(
        df_lift_test=rows, channel_col="channel", channel_columns=list(mmm.channel_columns),
        channel_transform=mmm._make_channel_transform(rows), target_transform=mmm._make_target_transform(rows),
        dim_cols=list(mmm.dims),
    ).reset_index(drop=True)
    model = mmm.model
    positions = {d: pd.Index(model.coords[d]).get_indexer(rows[d]).astype("int64") for d in ("date", "geo", "channel")}
    if any((p < 0).any() for p in positions.values()):
        raise ValueError("lift-test rows name a date, cell or channel the model does not have")
    idx = {d: as_xtensor(p, dims=("lift_row",)) for d, p in positions.items()}
    x_before = as_xtensor(scaled["x"].to_numpy(), dims=("lift_row",))
    params = {"lam": model["saturation_lam"].isel(idx, missing_dims="ignore"),
              "beta": model["saturation_beta"].isel(idx, missing_dims="ignore")}
    # the added spend through the adstock: row r (period k of its test) gets sum_{j<=k} w_{k-j} dx_j
    pos = rows.groupby("test", sort=False).cumcount().to_numpy()  # rows run in date order within a test
    test = rows["test"].to_numpy()
    lag = pos[:, None] - pos[None, :]
    carries = (test[:, None] == test[None, :]) & (lag >= 0) & (lag < mmm.adstock.l_max)
    alpha = model["adstock_alpha"].isel(idx, missing_dims="ignore").values[:, None]
    norm = (1 - alpha ** mmm.adstock.l_max) / (1 - alpha)
    carried = pt.dot(pt.where(carries, alpha ** np.where(carries, lag, 0), 0.0) / norm,
                     scaled["delta_x"].to_numpy())
    x_after = x_before + as_xtensor(carried, dims=("lift_row",))
    per_row = mmm.saturation.function(x_after, **params) - mmm.saturation.function(x_before, **params)
    if MULTIPLIER in model.named_vars:
        per_row = per_row * model[MULTIPLIER].isel(idx, missing_dims="ignore")
    per_row = per_row.values
    groups = pd.Index(rows["test"].unique())
    member = (groups.get_indexer(rows["test"])[None, :] == np.arange(len(groups))[:, None]).astype(float)
    observed = member @ scaled["delta_y"].to_numpy()
    sigma = scaled.groupby(rows["test"].to_numpy(), sort=False)["sigma"].first().loc[groups].to_numpy()
    with model:
        model.add_coord("lift_test", groups.astype(str))
        estimated = pm.Deterministic("lift_measurements_model_estimated_lift", pt.dot(member, per_row),
                                     dims="lift_test")
        pm.Normal("lift_measurements", mu=estimated, sigma=sigma, observed=observed, dims="lift_test")
    return len(groups)


def diagnostics(mmm: MMM, settings: FitSettings) -> dict:
    """max r-hat, min bulk ESS and divergences over the free parameters; MAP/ADVI have no chains to judge."""
    idata = mmm.idata
    post = idata.posterior
    if settings.method != "nuts":
        return {"max_rhat": None, "min_ess_bulk": None, "divergences": 0}
    import arviz as az

    free = [v.name for v in mmm.model.free_RVs]
    names = [n for n in free if n in post] or list(post.data_vars)
    ds = post.to_dataset()[names] if hasattr(post, "to_dataset") else post[names]
    rhat = az.rhat(ds)
    ess = az.ess(ds, method="bulk")
    max_rhat = float(max(float(np.nanmax(rhat[v].values)) for v in rhat.data_vars))
    min_ess = float(min(float(np.nanmin(ess[v].values)) for v in ess.data_vars))
    div = 0
    if "sample_stats" in idata.children if hasattr(idata, "children") else hasattr(idata, "sample_stats"):
        ss = idata["sample_stats"]
        for name in ("diverging", "divergences"):
            if name in ss:
                div = int(np.asarray(ss[name].values).sum())
                break
    return {"max_rhat": max_rhat, "min_ess_bulk": min_ess, "divergences": div}


def passes(diag: dict, settings: FitSettings) -> bool:
    if settings.method != "nuts":
        return True  # previews are usable; their status says so through the sampler column
    return (
        diag["max_rhat"] is not None
        and diag["max_rhat"] <= settings.max_rhat
        and diag["min_ess_bulk"] >= settings.min_ess_bulk
        and diag["divergences"] <= settings.max_divergences
    )
