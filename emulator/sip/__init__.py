"""Sans-I/O SIP (RFC 3261 subset) shared by the SIP Cluster nodes and the phone clients.

Layers, bottom up: ``headers``/``message`` (the data), ``parser``/``builder`` (bytes and
responses), ``transaction`` (§17 state machines driven by explicit time), ``dialog`` (§12),
``registrar`` (§10 binding table) and ``sdp`` (one PCMU audio stream).  ``transport`` and ``ua``
are the thin asyncio layers; nothing below them does I/O or reads a clock.
"""
