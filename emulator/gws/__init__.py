"""GWS API node (DESIGN §2.3): Workspace API v3 over HTTP + CometD, T-Lib client of one SIP node.

* :mod:`emulator.gws.node` — sessions and DN views; Workspace requests -> T-Lib requests;
* :mod:`emulator.gws.voice_map` — the table of T-Lib events -> ``/workspace/v3/voice`` messages;
* :mod:`emulator.gws.tlink` — the node-wide T-Lib link (ADDP, reconnect with backoff);
* :mod:`emulator.gws.http_api` — REST routes and the lab's OAuth token endpoint;
* :mod:`emulator.gws.notifications` — CometD (emulator/bayeux) bound to Workspace sessions;
* :mod:`emulator.gws.server` — the service; ``python -m emulator.gws`` runs it.
"""
