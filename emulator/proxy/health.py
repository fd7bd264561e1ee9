"""Active health checks: ``GET <health-path>`` on every upstream each interval.

An upstream is unhealthy when the check cannot connect, gets no status line within the timeout
(a paused or black-holed node), or gets anything but ``200`` (GWS answers 503 when its T-Lib link
is down). Results go to :class:`UpstreamPool`; state changes go to ``on_transition``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from emulator.proxy.errors import HttpError
from emulator.proxy.http1 import parse_response_head
from emulator.proxy.upstreams import Transition, Upstream, UpstreamPool


async def check_once(upstream: Upstream, path: str, timeout: float) -> tuple[bool, str]:
    """One health check; returns (healthy, reason)."""
    host, port = upstream.endpoint
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {upstream.endpoint}\r\n"
                "User-Agent: drlab-proxy-health\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode("ascii"))
            await writer.drain()
            head = parse_response_head(await reader.readuntil(b"\r\n\r\n"))
    except TimeoutError:
        return False, f"no answer within {timeout:.3g} s"
    except HttpError as exc:
        return False, exc.reason
    except asyncio.IncompleteReadError:
        return False, "connection closed before a status line"
    except (OSError, asyncio.LimitOverrunError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                async with asyncio.timeout(timeout):
                    await writer.wait_closed()
    if head.status != 200:
        return False, f"HTTP {head.status} on {path}"
    return True, f"HTTP 200 on {path}"


class HealthChecker:
    def __init__(
        self,
        pool: UpstreamPool,
        *,
        path: str,
        interval: float,
        timeout: float,
        on_transition: Callable[[Transition], None],
    ) -> None:
        self.pool = pool
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.on_transition = on_transition

    async def run_round(self) -> None:
        upstreams = list(self.pool.upstreams)
        results = await asyncio.gather(
            *(check_once(upstream, self.path, self.timeout) for upstream in upstreams)
        )
        now = asyncio.get_running_loop().time()
        for upstream, (ok, reason) in zip(upstreams, results, strict=True):
            transition = self.pool.record_check(upstream.name, ok, reason, now)
            if transition is not None:
                self.on_transition(transition)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.run_round()
