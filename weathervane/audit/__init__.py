"""Causal audits of automated deployments and applied plans (synthetic control, DiD, interrupted time series)."""
