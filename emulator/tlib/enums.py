"""Enumerations of T-Library attribute values (names as in the Genesys T-Library SDK)."""

from __future__ import annotations

from enum import StrEnum


class AgentWorkMode(StrEnum):
    UNKNOWN = "Unknown"
    AUTO_IN = "AutoIn"
    MANUAL_IN = "ManualIn"
    AFTER_CALL_WORK = "AfterCallWork"
    AUX_WORK = "AuxWork"


class AgentState(StrEnum):
    """Agent state on a DN as its owner holds it (AfterCallWork is NotReady + ACW on the wire)."""

    LOGGED_OUT = "LoggedOut"
    NOT_READY = "NotReady"
    READY = "Ready"
    AFTER_CALL_WORK = "AfterCallWork"


class CallState(StrEnum):
    """State of one party (a DN or an external number) in a call."""

    DIALING = "Dialing"
    RINGING = "Ringing"
    ESTABLISHED = "Established"
    HELD = "Held"
    RELEASED = "Released"


class CallType(StrEnum):
    INTERNAL = "Internal"
    INBOUND = "Inbound"
    OUTBOUND = "Outbound"


class AddressType(StrEnum):
    DN = "DN"
    POSITION = "Position"
    QUEUE = "Queue"


class RegisterMode(StrEnum):
    MODE_SHARE = "ModeShare"
    MODE_PRIVATE = "ModePrivate"
    MODE_MONITOR = "ModeMonitor"


class DNStatus(StrEnum):
    IN_SERVICE = "InService"
    OUT_OF_SERVICE = "OutOfService"


class PhoneType(StrEnum):
    """How the agent's phone reaches the cluster; it decides what DN ownership follows."""

    PSTN = "PSTN"
    SOFTPHONE = "Softphone"
