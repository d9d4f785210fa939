"""Asset metadata as the UI should show it."""
from __future__ import annotations

import math


def round_value(value, digits: int = 4):
    """Floats to `digits` significant digits (a ROAS of 2.1734 reads better than 2.173412598); others as they are."""
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return round(value, max(0, digits - 1 - int(math.floor(math.log10(abs(value))))))
    return value


def rounded(metadata: dict, digits: int = 4) -> dict:
    return {k: round_value(v, digits) for k, v in metadata.items()}
