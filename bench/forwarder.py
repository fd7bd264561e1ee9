"""A plain asyncio TCP byte forwarder: the benchmarks' no-logic floor.

Run: ``python bench/forwarder.py HOST:PORT``. It listens on an ephemeral loopback port, prints
``{"event": "ready", "endpoints": {"http": "127.0.0.1:PORT"}}`` (the line the lab's services
print), and relays every connection to ``HOST:PORT`` byte for byte, with no protocol logic: a
path through it crosses the same sockets as a path through a service, and costs only that.
"""

import asyncio
import json
import sys


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    up_reader, up_writer = await asyncio.open_connection(host, int(port))
    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


async def main() -> None:
    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "ready", "endpoints": {"http": f"127.0.0.1:{port}"}}), flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
