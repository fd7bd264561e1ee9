"""RTP (RFC 3550) for the lab's media: packets, a receive meter and an asyncio UDP endpoint.

``packet`` and ``meter`` are sans-I/O (bytes and explicit times in, packets and reports out);
``endpoint`` is the thin asyncio layer.  The meter's verdict answers the seed's question "can the
agent continue talking": RTP both ways with no gap longer than 1 s.
"""
