"""What one relay link costs: added round-trip latency and throughput of a TCP link vs direct.

Run: ``python bench/relay.py [--round-trips N] [--megabytes M]``. In the same run, on loopback:
an echo server and a byte sink (each its own process), the fault relay (``python -m
emulator.links``, its own process) with one link to each, and this process as the client with
blocking sockets (``TCP_NODELAY``):

- latency: 64-byte ping-pong, one message in flight, direct to the echo server and through the
  link, interleaved in blocks so both see the same machine; the link's cost is the difference of
  the round-trip percentiles, where the link is crossed twice (request and echo): one hop, one
  crossing, is half of it;
- throughput: M megabytes written as fast as possible to the sink, which answers with the byte
  count after EOF; MB/s direct and through the link.

Prints p50/p99 in microseconds, the added latency per round trip and per hop, and the throughput
ratio (goal: added p50 per hop <= 100 us, >= 300 MB/s through the link). Nothing is asserted:
machines differ.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVERS = """
import socket, sys, threading
def echo(conn):
    while data := conn.recv(65536):
        conn.sendall(data)
def sink(conn):
    total = 0
    while data := conn.recv(1 << 20):
        total += len(data)
    conn.sendall(str(total).encode())
    conn.close()
def serve(handler):
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()
serve(echo if sys.argv[1] == "echo" else sink)
"""

PAYLOAD = b"x" * 64
CHUNK = b"\0" * (1 << 20)


def start_server(kind: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVERS, kind], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def start_relay(
    upstreams: dict[str, int], logs: Path
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    config = logs / "links.json"
    config.write_text(
        json.dumps(
            {
                "links": [
                    {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"}
                    for name, port in upstreams.items()
                ]
            }
        )
    )
    log_path = logs / "links.log"
    argv = [sys.executable, "-m", "emulator.links", "--api", "127.0.0.1:0", "--config", str(config)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == "ready":
                return process, record["links"]
        time.sleep(0.05)
    raise RuntimeError(f"the relay did not start: {log_path.read_text()[-2000:]}")


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(sock: socket.socket, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        sock.sendall(PAYLOAD)
        received = 0
        while received < len(PAYLOAD):
            received += len(sock.recv(65536))
        samples.append(time.perf_counter() - start)
    return samples


def throughput(address: str, megabytes: int) -> float:
    """MB/s (10^6 bytes) of one connection writing ``megabytes`` MiB to the sink."""
    sock = connect(address)
    start = time.perf_counter()
    for _ in range(megabytes):
        sock.sendall(CHUNK)
    sock.shutdown(socket.SHUT_WR)
    answer = sock.recv(64)
    elapsed = time.perf_counter() - start
    sock.close()
    total = int(answer)
    assert total == megabytes * len(CHUNK), f"the sink got {total} bytes"
    return total / elapsed / 1e6


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20000)
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()

    echo, echo_port = start_server("echo")
    sink, sink_port = start_server("sink")
    with tempfile.TemporaryDirectory(prefix="drlab-bench-") as logs:
        relay, links = start_relay({"echo": echo_port, "sink": sink_port}, Path(logs))
        try:
            direct_sock = connect(f"127.0.0.1:{echo_port}")
            link_sock = connect(links["echo"])
            round_trips(direct_sock, 500)  # warm both paths up
            round_trips(link_sock, 500)
            direct: list[float] = []
            linked: list[float] = []
            block = max(1, args.round_trips // args.blocks)
            for _ in range(args.blocks):
                direct += round_trips(direct_sock, block)
                linked += round_trips(link_sock, block)
            direct_mbs = [throughput(f"127.0.0.1:{sink_port}", args.megabytes) for _ in "ab"]
            linked_mbs = [throughput(links["sink"], args.megabytes) for _ in "ab"]
        finally:
            for process in (relay, echo, sink):
                process.terminate()
                process.wait()

    print(f"relay link vs direct TCP, {len(direct)} round trips of {len(PAYLOAD)} bytes each")
    print(f"{'':22}{'p50 us':>10}{'p99 us':>10}")
    for label, samples in (("direct", direct), ("through one link", linked)):
        p50, p99 = percentile(samples, 0.5) * 1e6, percentile(samples, 0.99) * 1e6
        print(f"{label:22}{p50:10.1f}{p99:10.1f}")
    added50 = (percentile(linked, 0.5) - percentile(direct, 0.5)) * 1e6
    added99 = (percentile(linked, 0.99) - percentile(direct, 0.99)) * 1e6
    ratio = percentile(linked, 0.5) / percentile(direct, 0.5)
    print(
        f"added per round trip (the link crossed twice): p50 {added50:.1f} us, "
        f"p99 {added99:.1f} us (x{ratio:.2f} of direct)"
    )
    print(
        f"added per hop (one crossing): p50 {added50 / 2:.1f} us, p99 {added99 / 2:.1f} us "
        f"(goal p50 <= 100 us)"
    )
    best_direct, best_linked = max(direct_mbs), max(linked_mbs)
    print(
        f"throughput, one connection, {args.megabytes} MiB: direct {best_direct:.0f} MB/s, "
        f"through the link {best_linked:.0f} MB/s "
        f"({best_linked / best_direct:.2f} of direct; goal >= 300 MB/s)"
    )


if __name__ == "__main__":
    main()
