"""Policy replay: candidate budget policies judged on the tenant's logged decision periods (off-policy evaluation
with a direct method, SNIPS and a doubly robust estimator), never on synthetic shocks."""
from __future__ import annotations

from weathervane.replay.service import replay_tenant

__all__ = ["replay_tenant"]
