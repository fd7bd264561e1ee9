"""The encoder built once writes what json.dumps writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.common.jsonfast import make_encoder

SAMPLES: list[Any] = [
    {"message": "EventAgentReady", "ReferenceID": 7, "ThisDN": "7001", "AgentID": None},
    {"nested": {"list": [1, 2.5, True, "é☎"], "empty": {}}, "ts": 1764648000.123456},
    ["a", 1, [], None],
]


@pytest.mark.parametrize("value", SAMPLES)
def test_compact_output_is_json_dumps_with_compact_separators(value: Any) -> None:
    encode = make_encoder(str)
    assert encode(value) == json.dumps(value, separators=(",", ":"), default=str)
    assert encode(value) == encode(value)  # nothing is kept between calls


def test_default_serves_what_json_cannot_and_may_refuse() -> None:
    spaced = make_encoder(str, item_separator=", ", key_separator=": ")
    assert spaced({"when": b"x"}) == json.dumps({"when": b"x"}, default=str)

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON")

    with pytest.raises(TypeError, match="bytes is not JSON"):
        make_encoder(refuse)({"frame": b"x"})


def test_without_a_default_what_json_cannot_hold_raises_as_json_dumps_does() -> None:
    with pytest.raises(TypeError, match="Object of type bytes is not JSON serializable"):
        make_encoder()({"frame": b"x"})
