"""The sticky HTTP/1.1 + WebSocket reverse proxy of a data centre (proxy-dc1, proxy-dc2).

NGINX-like, and it knows HTTP, not GWS: cookie stickiness (``DRLAB_UPSTREAM``), active health
checks, failover within the DC, WebSocket upgrade passthrough, ``GET /proxy/status``.
"""
