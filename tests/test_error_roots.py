"""One error root per package: every exception a package defines is under that package's root."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import clients
import emulator

ROOTS = {
    "emulator.bayeux": "emulator.bayeux.messages.BayeuxError",
    "emulator.gws": "emulator.gws.errors.GwsError",
    "emulator.lab": "emulator.lab.errors.LabError",
    "emulator.links": "emulator.links.errors.LinksError",
    "emulator.proxy": "emulator.proxy.errors.ProxyError",
    "emulator.rtp": "emulator.rtp.packet.RtpError",
    "emulator.sip": "emulator.sip.errors.SipError",
    "emulator.sipcluster": "emulator.sipcluster.errors.ClusterError",
    "emulator.tlib": "emulator.tlib.errors.TLibError",
    "clients.phoneline": "clients.phoneline.calls.PhoneLineError",
    "clients.softphone": "clients.softphone.registration_core.RegistrationStateError",
    "clients.wwe": "clients.wwe.errors.WweError",
}


def _resolve(path: str) -> type[BaseException]:
    module, _, name = path.rpartition(".")
    root: type[BaseException] = getattr(importlib.import_module(module), name)
    return root


def _exceptions_defined_in(package: str) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    base = importlib.import_module(package)
    for info in pkgutil.walk_packages(base.__path__, f"{package}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found.append(value)
    return found


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_of_the_package_is_under_its_root(package: str) -> None:
    root = _resolve(ROOTS[package])
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _exceptions_defined_in(package)
        if not issubclass(cls, root)
    ]
    assert outside == [], f"not under {root.__name__}: {outside}"


def test_every_package_that_defines_an_exception_has_a_root() -> None:
    packages = {
        info.name
        for top in (emulator, clients)
        for info in pkgutil.iter_modules(top.__path__, f"{top.__name__}.")
        if info.ispkg
    }
    with_exceptions = {p for p in packages if _exceptions_defined_in(p)}
    assert with_exceptions - set(ROOTS) == set()
