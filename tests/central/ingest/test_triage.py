import json
from datetime import UTC, datetime, timedelta

import pytest

from central.ingest.triage import Accepted, Rejected, triage
from edge.protocol import encode, make

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def payload(
    device: str = "cam-1",
    type_: str = "plate",
    when: datetime = NOW,
    body: dict[str, object] | None = None,
) -> bytes:
    return encode(make(device, type_, body or {"plate": "湘F12345"}, now=when))


def test_good_event_is_accepted() -> None:
    result = triage("bl/v1/cam-1/event/plate", payload(), now=NOW, max_bytes=4096)
    assert isinstance(result, Accepted)
    assert result.channel == "event"


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        ("bl/v1/cam-1/event/plate", b"x" * 5000, "oversize"),
        ("bl/v1/cam-1/event/plate", b"not json", "json"),
        ("bl/v1/cam-1/event/plate", json.dumps({"v": 9}).encode(), "version"),
        ("bl/v1/cam-2/event/plate", payload(), "topic_mismatch"),
        ("bl/v1/cam-1/event/sos", payload(), "topic_mismatch"),
        ("elsewhere/x", payload(), "topic"),
        (
            "bl/v1/cam-1/state",
            payload(type_="state", body={"online": "maybe"}),
            "schema",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_reason(
    topic: str, raw: bytes, reason: str
) -> None:
    result = triage(topic, raw, now=NOW, max_bytes=4096)
    assert isinstance(result, Rejected)
    assert result.reason == reason
    assert result.detail


@pytest.mark.parametrize(
    ("off", "skew"),
    [(timedelta(hours=2), "ts_future"), (-timedelta(days=60), "ts_past")],
)
def test_an_event_from_a_skewed_clock_is_kept_at_its_receipt_time(
    off: timedelta, skew: str
) -> None:
    raw = payload(when=NOW + off)
    result = triage("bl/v1/cam-1/event/plate", raw, now=NOW, max_bytes=4096)
    assert isinstance(result, Accepted)
    assert result.skew == skew
    assert result.envelope.ts == NOW
    assert str(result.envelope.id) == json.loads(raw)["id"]  # still deduplicated


def test_old_last_will_state_is_accepted() -> None:
    old = payload(
        type_="state",
        when=NOW - timedelta(days=90),
        body={"online": False, "kind": "camera"},
    )
    result = triage("bl/v1/cam-1/state", old, now=NOW, max_bytes=4096)
    assert isinstance(result, Accepted)
    assert result.state is not None
    assert result.state.online is False
