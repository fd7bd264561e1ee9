"""Hypothesis profiles: ``ci`` (the default, 300 examples a property) and ``deep`` (5,000), for a
longer hunt: ``HYPOTHESIS_PROFILE=deep python -m pytest tests/fuzz``."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
