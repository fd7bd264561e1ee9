"""The lab's SIP softphone (service ``softphone2`` for agent2): a library and a CLI.

It registers at the first registrar of its list and fails over to the next when a refresh fails
(``registration_core``, driven by ``registration``), answers calls and runs RTP both ways
(``clients.phoneline``), and reports per call: packets sent/received, loss, longest gap, end
reason and the "talking" verdict.  ``phone.Softphone`` is the library entry point; ``control``
is its loopback HTTP API.
"""
