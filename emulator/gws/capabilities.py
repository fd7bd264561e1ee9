"""``capabilities`` of a DN and of a call: the Workspace voice operations that make sense now.

A desktop enables its buttons from these lists (the Java client turns each into its
``Capability`` enum by name, dropping names it does not know), so a name here is a path of
``/workspace/v3/voice/...`` that drlab routes (``tests/gws/test_voice_ops`` checks it). The lists
follow the Workspace API's states: by agent state for the DN, by call state for a call, with the
consultation and conference operations added where the call is one. GWS does not refuse an
operation a list leaves out: the SIP node answers it (EventError), as a real SIP Server would.
"""

from __future__ import annotations

from emulator.gws.dnview import CallView, DnView, WorkspaceAgentState, WorkspaceCallState

_DN_BY_STATE: dict[WorkspaceAgentState, tuple[str, ...]] = {
    WorkspaceAgentState.LOGGED_OUT: ("login", "make-call"),
    WorkspaceAgentState.LOGGED_IN: ("ready", "not-ready", "logout", "make-call"),
    WorkspaceAgentState.READY: ("not-ready", "logout", "make-call"),
    WorkspaceAgentState.NOT_READY: ("ready", "not-ready", "logout", "make-call"),
    WorkspaceAgentState.OUT_OF_SERVICE: (),
}

_USER_DATA = ("attach-user-data", "update-user-data", "delete-user-data-pair")

_CALL_BY_STATE: dict[WorkspaceCallState, tuple[str, ...]] = {
    WorkspaceCallState.DIALING: ("release", "clear", *_USER_DATA),
    WorkspaceCallState.RINGING: ("answer", "release", "redirect", *_USER_DATA),
    WorkspaceCallState.ESTABLISHED: (
        "release",
        "hold",
        "clear",
        *_USER_DATA,
        "send-dtmf",
        "initiate-transfer",
        "initiate-conference",
        "single-step-transfer",
        "single-step-conference",
    ),
    WorkspaceCallState.HELD: ("retrieve", "release", "clear", *_USER_DATA),
    # After the release the desktop may still attach its disposition, then mark the call done.
    WorkspaceCallState.RELEASED: ("complete", *_USER_DATA),
    WorkspaceCallState.COMPLETED: (),
}

# A consultation call (it has a parent) may finish the transfer or conference it was made for,
# or go back to the held call.
_CONSULTATION = ("complete-transfer", "complete-conference", "alternate", "reconnect", "merge")
_CONFERENCE = ("delete-from-conference",)


def dn_capabilities(dn: DnView) -> list[str]:
    state = dn.reported_state
    names = list(_DN_BY_STATE[state])
    if state is not WorkspaceAgentState.OUT_OF_SERVICE:
        names.append("dnd-off" if dn.dnd else "dnd-on")
        names.append("cancel-forward" if dn.forward_to else "set-forward")
        names.append("send-user-event")
    return names


def call_capabilities(dn: DnView, call: CallView) -> list[str]:
    if not dn.link_up:
        return []  # nothing can reach the SIP node
    names = list(_CALL_BY_STATE[call.state])
    live = call.state in (WorkspaceCallState.DIALING, WorkspaceCallState.ESTABLISHED)
    if call.consultation and live:
        names.extend(_CONSULTATION)
    if call.conference and call.state is WorkspaceCallState.ESTABLISHED:
        names.extend(_CONFERENCE)
    return names
