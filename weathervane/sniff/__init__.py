"""Dataset sniff: what a tenant's landing data holds, and what it can carry (grain, channels, weather, period,
live or synthetic twin), each decision with its reason."""
from weathervane.sniff.decide import GAPS, LIVE, TWIN, Decision, Decisions, decide
from weathervane.sniff.profile import ChannelProfile, Profile, measure
from weathervane.sniff.record import Sniff, decisions_of, read_sniff, sniff_tenant, write_sniff
from weathervane.sniff.twin import TwinConfig, twin_config, twin_tenant_id

__all__ = [
    "GAPS", "LIVE", "TWIN", "ChannelProfile", "Decision", "Decisions", "Profile", "Sniff", "TwinConfig", "decide",
    "decisions_of", "measure", "read_sniff", "sniff_tenant", "twin_config", "twin_tenant_id", "write_sniff",
]
