"""A JSON encoder built once, for the hot paths (T-Lib frames, log lines).

``json.dumps`` and ``JSONEncoder.encode`` build the C encoder anew on every call, which costs as
much as encoding a message this small. Without a circular-reference check the C encoder holds no
state between calls, so one can serve every call (our messages and log records are trees).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def make_encoder(
    default: Callable[[Any], Any] | None = None,
    *,
    item_separator: str = ",",
    key_separator: str = ":",
) -> Callable[[Any], str]:
    """``obj -> str`` as ``json.dumps(obj, default=default, separators=...)`` writes it; with no
    ``default``, what JSON cannot hold raises ``TypeError`` as in ``json.dumps``."""
    if default is None:
        default = json.JSONEncoder().default
    make = getattr(json.encoder, "c_make_encoder", None)  # untyped: the C accelerator
    if make is None:  # pragma: no cover - CPython builds have it
        fallback = json.JSONEncoder(
            default=default, separators=(item_separator, key_separator), check_circular=False
        )
        return fallback.encode
    encode_chunks = make(  # markers, default, encoder, indent, separators, sort/skip keys, NaN
        None,
        default,
        json.encoder.encode_basestring_ascii,
        None,
        key_separator,
        item_separator,
        False,
        False,
        True,
    )
    return lambda obj: "".join(encode_chunks(obj, 0))
