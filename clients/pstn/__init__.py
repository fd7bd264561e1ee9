"""The lab's PSTN gateway (service ``pstn``): customers' calls in, PSTN agents' phones out.

It places customer calls to a DN on a chosen SIP node ("Call1 on sip3") and answers the INVITEs a
call node sends to PSTN agent numbers (agent1's ``agent-7001``), runs RTP both ways on every call
and reports per call the same media figures as the softphone (``clients.phoneline``): packets
sent/received, loss, longest gap, the "talking" verdict and the end reason. ``gateway.Pstn`` is
the library entry point; its control API adds ``POST /calls`` to the phones' shared one.
"""
