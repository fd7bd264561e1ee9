"""``drlab chaos``: seeded faults (``plan``), a workload of live agents and calls that records
a history (``workload``, ``history``), a checker of the invariants over that history and the
services' state (``checker``), and the shrinking of a failing fault sequence (``shrink``).
"""

from emulator.lab.chaos.plan import ChaosFault, FaultKind, plan_chaos, run_chaos

__all__ = ["ChaosFault", "FaultKind", "plan_chaos", "run_chaos"]
