import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.protocol import TopicError, topics

ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")
names = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z")


def test_builders_follow_the_contract() -> None:
    assert topics.state("cam-1") == "bl/v1/cam-1/state"
    assert topics.event("cam-1", "plate") == "bl/v1/cam-1/event/plate"
    assert topics.command("cab-2", "flash") == "bl/v1/cab-2/cmd/flash"
    assert topics.shared(topics.all_events()) == "$share/central/bl/v1/+/event/#"
    assert topics.node_inbox("k1") == ["bl/v1/k1/cmd/+", "bl/v1/k1/config"]


@pytest.mark.parametrize("bad", ["", "Cam", "a/b", "+", "#", "x" * 65, "中文"])
def test_bad_device_ids_name_what_arrived(bad: str) -> None:
    with pytest.raises(TopicError, match="expected a device id"):
        topics.state(bad)


@given(ids, names)
def test_event_topics_round_trip(device: str, name: str) -> None:
    parsed = topics.parse(topics.event(device, name))
    assert (parsed.device, parsed.channel, parsed.name) == (device, "event", name)


@given(ids)
def test_plain_topics_round_trip(device: str) -> None:
    for build, channel in [
        (topics.state, "state"),
        (topics.telemetry, "telemetry"),
        (topics.config, "config"),
        (topics.reply, "reply"),
    ]:
        assert topics.parse(build(device)) == topics.Topic(
            device=device, channel=channel
        )


@given(st.text(max_size=200))
def test_parse_raises_only_topic_error(text: str) -> None:
    with contextlib.suppress(TopicError):
        topics.parse(text)


@pytest.mark.parametrize(
    "bad", ["bl/v2/a/state", "bl/v1/a/state/x", "bl/v1/a/event", "bl/v1/a/nope", "x"]
)
def test_parse_refuses_foreign_shapes(bad: str) -> None:
    with pytest.raises(TopicError):
        topics.parse(bad)
