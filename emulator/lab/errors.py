"""Every error of the lab, under one root: ``LabError``.

Misuse is told apart from a failed operation by its class, so the CLI maps each to its exit code
at one boundary (``cli_support.fail``) and a long-running caller (the dashboard) can answer a
bad request without parsing messages:

- misuse, exit 2: ``UnknownName`` (a service, link, group, DC, mode or toxic the lab does not
  have; the message lists the valid names) and ``FaultRefused`` (a malformed fault: a bad toxic
  attribute, the same DC twice, a TTL that is not positive);
- a lab operation that failed, exit 1: ``LabError`` itself (a service that does not come up, a
  lab already running), ``RelayUnavailable`` (the relay's API does not answer), ``NoEngine``
  and ``DockerFailed`` (the compose engine's Docker CLI).

Input the lab cannot use is also under the root, and a ``ValueError``: ``TopologyError``
(compose.yaml), ``ScenarioError`` and ``YamlSyntaxError`` (a scenario file); the CLI answers them
as misuse where it reads the file.
"""

from __future__ import annotations

from collections.abc import Sequence


class LabError(RuntimeError):
    """A lab operation failed; the message says what and what to do."""


class UnknownName(LabError):
    """A service, link, DC or toxic that the lab does not have (a usage error: exit 2)."""

    def __init__(self, kind: str, name: str, valid: Sequence[str], where: str = "") -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(valid)
        shown = ", ".join(valid) or "none"
        super().__init__(f"unknown {kind} {name!r}{where}; valid {kind}s{where}: {shown}")


class FaultRefused(LabError):
    """The fault is malformed (bad toxic attribute, same DC twice...): a usage error, exit 2."""


class RelayUnavailable(LabError):
    """The relay's API does not answer (the lab is down, or the relay was killed)."""


class NoEngine(LabError):
    """No Docker CLI, no Compose, or no engine answering."""


class DockerFailed(LabError):
    """A docker command failed; the message carries its own error."""
