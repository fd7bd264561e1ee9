"""The relay: every named link, each change made under one lock and logged for the timeline.

``Relay`` is what the HTTP API drives. It keeps Toxiproxy's collection rules (a name is created
once, ``populate`` leaves a proxy alone when its listen and upstream are unchanged and replaces it
otherwise, ``reset`` heals every proxy and removes every toxic) and adds ours: cut modes, TTLs
that heal or remove by themselves after ``ttl`` seconds scaled by the lab's ``TimeScale``, and
per-connection cuts. Every request is validated and its sockets bound before anything changes,
so a refused request leaves the relay as it was.

Timeline events (JSON lines): ``link.create``, ``link.update``, ``link.delete``, ``link.cut``,
``link.heal``, ``link.heal_failed``, ``link.connection_cut``, ``toxic.add``, ``toxic.update``,
``toxic.remove``, ``links.reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Self

from emulator.common.jsonlog import JsonLog
from emulator.common.timescale import TimeScale
from emulator.links.errors import (
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    BadRequest,
    Conflict,
    LinksError,
    NotFound,
)
from emulator.links.link import Link
from emulator.links.model import (
    CutMode,
    LinkCommand,
    LinkSpec,
    LinkState,
    LinkUpdate,
    NewLink,
    cut_command,
    socket_host,
)
from emulator.links.sockets import bind_socket
from emulator.links.toxics import ToxicSpec

TtlKey = tuple[str, ...]


class Relay:
    def __init__(
        self,
        *,
        log: JsonLog,
        time_scale: TimeScale | None = None,
        rng: random.Random | None = None,
        connect_timeout: float = 5.0,
        udp_idle_timeout: float = 120.0,
    ) -> None:
        self._log = log
        self._time_scale = time_scale if time_scale is not None else TimeScale()
        self._rng = rng if rng is not None else random.Random()
        self._connect_timeout = connect_timeout
        self._udp_idle_timeout = udp_idle_timeout
        self._links: dict[str, Link] = {}
        self._lock = asyncio.Lock()
        self._ttls: dict[TtlKey, tuple[asyncio.Task[None], float]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def links(self) -> list[Link]:
        return list(self._links.values())

    def get(self, name: str) -> Link:
        try:
            return self._links[name]
        except KeyError:
            raise NotFound(PROXY_NOT_FOUND) from None

    def heal_in(self, name: str) -> float | None:
        """Seconds until the link's cut heals by its TTL, if one is running."""
        entry = self._ttls.get(("link", name))
        if entry is None:
            return None
        return max(entry[1] - asyncio.get_running_loop().time(), 0.0)

    async def create(self, new: NewLink) -> Link:
        async with self._lock:
            if new.spec.name in self._links:
                raise Conflict(PROXY_EXISTS)
            self._check_listen_free(new.spec, ignore=())
            sock = bind_socket(new.spec.listen, new.spec.protocol)
            link = self._logged(
                "link.create", await self._start(new.spec, sock, _initial_state(new))
            )
            self._links[link.name] = link
            return link

    async def update(self, name: str, update: LinkUpdate) -> Link:
        async with self._lock:
            link = self.get(name)
            spec = LinkSpec(
                name,
                update.listen or link.spec.listen,
                update.upstream or link.spec.upstream,
                update.protocol or link.spec.protocol,
            )
            if not link.spec.same_place(spec):
                # Toxiproxy restarts the proxy; its state, toxics and a running TTL carry over.
                link = await self._replace(link, spec, state=link.state, toxics=link.toxics)
            if update.enabled is True and link.state is not LinkState.UP:
                await self._heal(link, reason="enabled")
            elif update.enabled is False and link.state is not LinkState.CUT:
                await self._cut(link, CutMode.RESET, ttl=None)
            return link

    async def delete(self, name: str) -> None:
        async with self._lock:
            link = self.get(name)
            self._cancel_ttls(name)
            del self._links[name]
            await link.aclose(reset=True)
            self._log.event("link.delete", link=name)

    async def populate(self, items: Iterable[NewLink]) -> list[Link]:
        items = list(items)
        names = [item.spec.name for item in items]
        for name in names:
            if names.count(name) > 1:
                raise BadRequest(f"populate: proxy name {name!r} appears more than once")
        async with self._lock:
            changed = [
                item
                for item in items
                if item.spec.name not in self._links
                or not self._links[item.spec.name].spec.same_place(item.spec)
            ]
            replaced = [item.spec.name for item in changed if item.spec.name in self._links]
            sockets: dict[str, socket.socket] = {}
            try:
                for index, item in enumerate(changed):
                    others = [other.spec for other in changed[:index]]
                    self._check_listen_free(item.spec, ignore=replaced, also=others)
                    old = self._links.get(item.spec.name)
                    if old is None or not _same_listen(old.spec, item.spec):
                        sockets[item.spec.name] = bind_socket(item.spec.listen, item.spec.protocol)
            except LinksError:
                for bound in sockets.values():
                    bound.close()
                raise
            for item in changed:
                name, state = item.spec.name, _initial_state(item)
                if name in self._links:
                    # A replaced proxy is a new one, as in Toxiproxy: no toxics, no TTL.
                    self._cancel_ttls(name)
                    await self._replace(
                        self._links[name], item.spec, state=state, sock=sockets.get(name)
                    )
                else:
                    link = await self._start(item.spec, sockets[name], state)
                    self._links[name] = self._logged("link.create", link)
            return [self._links[name] for name in names]

    async def cut(self, name: str, mode: CutMode, ttl: float | None) -> Link:
        async with self._lock:
            link = self.get(name)
            await self._cut(link, mode, ttl)
            return link

    async def heal(self, name: str) -> Link:
        async with self._lock:
            link = self.get(name)
            await self._heal(link, reason="api")
            return link

    async def cut_many(self, names: Sequence[str], mode: CutMode, ttl: float | None) -> list[Link]:
        """Cut several links at one instant (a partition); an unknown name cuts none."""
        async with self._lock:
            links = self._resolve(names)
            for link in links:
                await self._cut(link, mode, ttl)
            return links

    async def heal_many(self, names: Sequence[str] | None = None) -> list[Link]:
        """Heal the named links, or every link when ``names`` is None; toxics stay."""
        async with self._lock:
            links = self.links() if names is None else self._resolve(names)
            for link in links:
                if link.state is not LinkState.UP:
                    await self._heal(link, reason="api")
            return links

    async def reset(self) -> None:
        """Toxiproxy's ``POST /reset``: every link up, every toxic removed."""
        async with self._lock:
            for link in self.links():
                self._cancel_ttls(link.name)
                if link.state is not LinkState.UP:
                    await self._heal(link, reason="reset")
                for toxic in link.clear_toxics():
                    self._log.event(
                        "toxic.remove", link=link.name, toxic=toxic.name, reason="reset"
                    )
            self._log.event("links.reset")

    async def add_toxic(self, name: str, toxic: ToxicSpec, ttl: float | None) -> ToxicSpec:
        async with self._lock:
            link = self.get(name)
            link.add_toxic(toxic)
            self._log.event("toxic.add", link=name, ttl=ttl, **_toxic_fields(toxic))
            if ttl is not None:
                self._arm_ttl(
                    ("toxic", name, toxic.name), ttl, lambda: self._expire_toxic(name, toxic.name)
                )
            return toxic

    async def update_toxic(self, name: str, toxic_name: str, body: Any) -> ToxicSpec:
        async with self._lock:
            toxic = self.get(name).update_toxic(toxic_name, body)
            self._log.event("toxic.update", link=name, **_toxic_fields(toxic))
            return toxic

    async def remove_toxic(self, name: str, toxic_name: str) -> None:
        async with self._lock:
            self.get(name).remove_toxic(toxic_name)
            self._cancel_ttl(("toxic", name, toxic_name))
            self._log.event("toxic.remove", link=name, toxic=toxic_name, reason="api")

    async def cut_connection(self, name: str, conn_id: int) -> None:
        async with self._lock:
            self.get(name).cut_connection(conn_id)
            self._log.event("link.connection_cut", link=name, conn=conn_id)

    async def aclose(self) -> None:
        async with self._lock:
            for key in list(self._ttls):
                self._cancel_ttl(key)
            links, self._links = list(self._links.values()), {}
            await asyncio.gather(*(link.aclose(reset=False) for link in links))

    # -- under the lock -------------------------------------------------------------------------

    def _resolve(self, names: Sequence[str]) -> list[Link]:
        missing = [name for name in names if name not in self._links]
        if missing:
            raise NotFound(f"{PROXY_NOT_FOUND}: {', '.join(missing)}")
        return [self._links[name] for name in dict.fromkeys(names)]

    async def _start(
        self,
        spec: LinkSpec,
        sock: socket.socket,
        state: LinkState,
        toxics: tuple[ToxicSpec, ...] = (),
    ) -> Link:
        link = Link(
            spec,
            sock,
            log=self._log,
            rng=self._rng,
            connect_timeout=self._connect_timeout,
            udp_idle_timeout=self._udp_idle_timeout,
            state=state,
            toxics=toxics,
        )
        try:
            await link.open()
        except BaseException:
            await link.aclose(reset=True)
            raise
        return link

    def _logged(self, event: str, link: Link) -> Link:
        self._log.event(
            event,
            link=link.name,
            listen=str(link.spec.listen),
            upstream=str(link.spec.upstream),
            protocol=str(link.spec.protocol),
            state=str(link.state),
        )
        return link

    async def _replace(
        self,
        old: Link,
        spec: LinkSpec,
        *,
        state: LinkState,
        toxics: tuple[ToxicSpec, ...] = (),
        sock: socket.socket | None = None,
    ) -> Link:
        """Restart a proxy whose listen or upstream changed: its connections are reset."""
        if sock is None and not _same_listen(old.spec, spec):
            self._check_listen_free(spec, ignore=(old.name,))
            sock = bind_socket(spec.listen, spec.protocol)
        await old.aclose(reset=True)
        try:
            if sock is None:
                # Same address: it was ours a moment ago, so binding it again is all but certain.
                sock = bind_socket(old.spec.listen, spec.protocol)
            link = self._logged("link.update", await self._start(spec, sock, state, toxics))
        except LinksError as exc:
            del self._links[old.name]
            self._cancel_ttls(old.name)
            self._log.error("link.delete", link=old.name, reason=f"restart failed: {exc.message}")
            raise
        self._links[old.name] = link
        return link

    async def _cut(self, link: Link, mode: CutMode, ttl: float | None) -> None:
        await link.apply(cut_command(mode))
        self._cancel_ttl(("link", link.name))
        self._log.event("link.cut", link=link.name, mode=str(mode), ttl=ttl, state=str(link.state))
        if ttl is not None:
            name = link.name
            self._arm_ttl(("link", name), ttl, lambda: self._heal(self.get(name), reason="ttl"))

    async def _heal(self, link: Link, *, reason: str) -> None:
        previous = link.state
        try:
            await link.apply(LinkCommand.HEAL)
        except LinksError as exc:
            self._log.error("link.heal_failed", link=link.name, reason=reason, error=exc.message)
            raise
        self._cancel_ttl(("link", link.name))
        if previous is not LinkState.UP:  # healing a link that is up is not a timeline event
            self._log.event("link.heal", link=link.name, reason=reason, previous=str(previous))

    async def _expire_toxic(self, name: str, toxic_name: str) -> None:
        self.get(name).remove_toxic(toxic_name)
        self._log.event("toxic.remove", link=name, toxic=toxic_name, reason="ttl")

    def _arm_ttl(
        self, key: TtlKey, ttl: float, action: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self._cancel_ttl(key)
        delay = self._time_scale(ttl)
        task = asyncio.create_task(self._expire(key, delay, action), name=f"ttl {'/'.join(key)}")
        self._ttls[key] = (task, asyncio.get_running_loop().time() + delay)

    async def _expire(
        self, key: TtlKey, delay: float, action: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        await asyncio.sleep(delay)
        async with self._lock:
            entry = self._ttls.get(key)
            if entry is None or entry[0] is not asyncio.current_task():
                return
            del self._ttls[key]
            with contextlib.suppress(LinksError):  # logged by the action; nothing to answer
                await action()

    def _cancel_ttl(self, key: TtlKey) -> None:
        entry = self._ttls.pop(key, None)
        if entry is not None and entry[0] is not asyncio.current_task():
            entry[0].cancel()

    def _cancel_ttls(self, name: str) -> None:
        for key in [key for key in self._ttls if key[1] == name]:
            self._cancel_ttl(key)

    def _check_listen_free(
        self, spec: LinkSpec, *, ignore: Iterable[str], also: Iterable[LinkSpec] = ()
    ) -> None:
        """Our own cut links hold their port with a socket other binds could share: check first."""
        if spec.listen.port == 0:
            return
        ignored = set(ignore)
        taken = [link.spec for link in self._links.values() if link.name not in ignored]
        for other in [*taken, *also]:
            if other.protocol is spec.protocol and _same_listen(other, spec):
                raise Conflict(
                    f"listen {spec.listen} ({spec.protocol}) is taken by proxy {other.name}"
                )


def _same_listen(a: LinkSpec, b: LinkSpec) -> bool:
    return (
        a.protocol is b.protocol
        and socket_host(a.listen.host) == socket_host(b.listen.host)
        and b.listen.port in (0, a.listen.port)
    )


def _initial_state(new: NewLink) -> LinkState:
    return LinkState.UP if new.enabled else LinkState.CUT


def _toxic_fields(toxic: ToxicSpec) -> dict[str, Any]:
    fields = toxic.to_json()
    return {"toxic": fields.pop("name"), **fields}
