"""What the lab's phones share: a SIP line with per-call RTP and media reports, and its control API.

``line.Line`` answers incoming calls (the softphone's and the PSTN gateway's agent phones) and,
with ``dialer.Dialer``, places outgoing ones (the PSTN gateway's customers); ``calls`` holds a
call's state table and the report the lab reads ("talking", loss, longest gap, end reason);
``control.ControlServer`` is the loopback HTTP API both phones serve.
"""
