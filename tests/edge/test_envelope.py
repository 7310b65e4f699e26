import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.protocol import (
    Envelope,
    PayloadError,
    TopicError,
    check_clock,
    check_topic,
    decode,
    encode,
    make,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


def good(**changes: object) -> bytes:
    env = make("cam-1", "plate", {"plate": "湘F12345"}, now=NOW)
    data = json.loads(encode(env))
    data.update(changes)
    return json.dumps(data).encode()


@given(bodies, st.datetimes(timezones=st.just(UTC)))
def test_round_trip(body: dict[str, object], when: datetime) -> None:
    env = make("node-7", "tick", body, now=when)
    back = decode(encode(env))
    assert back == env
    assert back.ts.tzinfo is UTC


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_payload_error(raw: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode(raw)


@given(
    st.dictionaries(
        st.sampled_from(["v", "id", "device", "ts", "type", "body", "x"]),
        json_values,
        max_size=7,
    )
)
def test_arbitrary_objects_raise_only_payload_error(data: dict[str, object]) -> None:
    with contextlib.suppress(PayloadError):
        decode(json.dumps(data).encode())


def test_wire_shape_is_the_documented_one() -> None:
    data = json.loads(good())
    assert set(data) == {"v", "id", "device", "ts", "type", "body"}
    assert data["v"] == 1
    assert data["ts"].endswith("Z")
    assert uuid.UUID(data["id"]).version == 7


@pytest.mark.parametrize(
    ("raw", "field", "reason", "words"),
    [
        (good(v=2), "v", "version", "expected schema v1, got v2"),
        (good(id=str(uuid.uuid4())), "id", "schema", "UUIDv7"),
        (good(ts="2026-11-29T08:00:00"), "ts", "schema", "naive"),
        (good(ts=1764403200), "ts", "schema", "ts"),
        (good(device="Bad/Id"), "device", "schema", "device"),
        (good(body=[1, 2]), "body", "schema", "body"),
        (good(extra=1), "extra", "schema", "extra"),
        (b"{not json", "", "json", "invalid JSON"),
        (b"\xff\xfe", "", "json", "invalid JSON"),
    ],
)
def test_junk_names_the_field_and_what_arrived(
    raw: bytes, field: str, reason: str, words: str
) -> None:
    with pytest.raises(PayloadError, match=words) as info:
        decode(raw)
    assert info.value.field == field
    assert info.value.reason == reason


def test_oversize_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadError, match="expected at most 100 bytes, got") as info:
        decode(b"x" * 101, max_bytes=100)
    assert info.value.reason == "oversize"


def test_topic_must_match_the_envelope() -> None:
    env = decode(good())
    assert check_topic("bl/v1/cam-1/event/plate", env).name == "plate"
    with pytest.raises(TopicError, match="expected device 'cam-2'"):
        check_topic("bl/v1/cam-2/event/plate", env)
    with pytest.raises(TopicError, match="expected type 'sos'"):
        check_topic("bl/v1/cam-1/event/sos", env)


def test_clock_bounds() -> None:
    env: Envelope = decode(good())
    check_clock(env, now=NOW)
    with pytest.raises(PayloadError, match="ahead") as info:
        check_clock(env, now=NOW - timedelta(hours=1))
    assert info.value.reason == "ts_future"
    with pytest.raises(PayloadError, match="within") as info:
        check_clock(env, now=NOW + timedelta(days=31))
    assert info.value.reason == "ts_past"


def test_make_refuses_bad_fields() -> None:
    with pytest.raises(PayloadError, match="type"):
        make("cam-1", "Bad Type", {}, now=NOW)
