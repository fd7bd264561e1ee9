"""Hypothesis profiles: ``ci`` (the default, 300 examples a property) and ``deep`` (5,000), for a
longer hunt: ``HYPOTHESIS_PROFILE=deep python -m pytest tests/fuzz``. A stateful example
(``test_node_state_machine.py``) is up to 40 steps (60 when deep)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

COMMON = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", COMMON, max_examples=300, stateful_step_count=40)
settings.register_profile("deep", COMMON, max_examples=5000, stateful_step_count=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
