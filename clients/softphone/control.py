"""The softphone's loopback control API: the phones' shared one (``clients.phoneline.control``)."""

from __future__ import annotations

from clients.phoneline.control import ControlServer

__all__ = ["ControlServer"]
