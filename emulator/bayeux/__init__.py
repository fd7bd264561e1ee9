"""CometD / Bayeux 1.0 for drlab: one sans-I/O core shared by the GWS server and the WWE client.

* :mod:`emulator.bayeux.messages` — wire model (frozen dataclasses), payload parsing, errors;
* :mod:`emulator.bayeux.channels` — channel names and wildcard patterns;
* :mod:`emulator.bayeux.server_core` — server registry, long-poll holds, expiry (no I/O);
* :mod:`emulator.bayeux.client_core` — client state machine and advice handling (no I/O);
* :mod:`emulator.bayeux.server` — long-polling + WebSocket transports on aiohttp;
* :mod:`emulator.bayeux.client` — asyncio client over aiohttp (WebSocket and long-polling).
"""
