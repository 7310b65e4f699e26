"""Several detector cards on one RS-485 line, framing and dead cards, end to end.

The node (pymodbus) and the simulated cards (a hand-written RTU slave) meet
on a real pty or a socket line; nothing here is faked but the card itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from pymodbus.pdu import ExceptionResponse

from edge.clock import ManualClock
from edge.node import build_agent
from firmware_sim.detector import DetectorCard, RtuLine
from loop_detector.agent import DetectorAgent
from loop_detector.registers import CardReading, Framing
from loop_detector.settings import DetectorSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

T0 = datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC)


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., DetectorAgent]]:
    agents: list[DetectorAgent] = []

    def make(name: str, url: str, **settings: Any) -> DetectorAgent:
        # pymodbus reads a socket:// line a byte at a time (0.35 s a poll)
        settings.setdefault("timeout_s", 1.0 if url.startswith("socket:") else 0.3)
        agent = build_agent(
            DetectorAgent,
            DetectorSettings(
                device_id=name,
                kind="loop_detector",
                data_dir=tmp_path / name,
                modbus_url=url,
                **settings,
            ),
            clock=ManualClock(T0),
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.client.close()  # type: ignore[no-untyped-call]
        agent.outbox.close()
        agent.trust.close()


@pytest.mark.parametrize("transport", ["pty", "socket"])
def test_two_cards_on_one_line_each_answer_only_their_unit(
    make_node: Callable[..., DetectorAgent], transport: str
) -> None:
    line = RtuLine(transport=transport)
    # a pty carries no parity; the socket line takes the default 8E1
    framing: dict[str, Any] = (
        {"parity": "N", "stopbits": 2} if transport == "pty" else {}
    )
    east = DetectorCard(4, unit=1, line=line)
    west = DetectorCard(2, unit=2, sensor="microwave", line=line)
    east.start()
    west.start()
    line.start()

    def read(node: DetectorAgent) -> CardReading | None:
        reading = node.read()
        # one node at a time holds a pty (pymodbus locks the port)
        node.client.close()  # type: ignore[no-untyped-call]
        return reading

    try:
        for _ in range(3):
            east.vehicle(1)
        west.vehicle(2, speed_kmh=52.0)
        node_west = make_node("det-west", line.path, unit=2, **framing)
        reading = read(node_west)
        assert reading is not None
        assert len(reading.lanes) == 2
        assert [lane.count for lane in reading.lanes] == [0, 1]
        assert reading.lanes[1].speed_kmh == 52.0
        node_east = make_node("det-east", line.path, unit=1, **framing)
        reading = read(node_east)
        assert reading is not None
        assert [lane.count for lane in reading.lanes] == [3, 0, 0, 0]
        # one answer per request: a second card answering would garble the line
        again = read(node_west)
        assert again is not None
        assert len(again.lanes) == 2
        # a unit nobody has: silence, a timeout fault, no data
        node_none = make_node("det-none", line.path, unit=3, **framing)
        assert read(node_none) is None
        assert node_none.faults() == {"card_silent"}
        assert list(line.heard)[-1][:2] == b"\x03\x04"
        assert {frame[0] for frame in line.heard} == {1, 2, 3}
    finally:
        line.close()


def test_a_dead_card_is_a_timeout_fault_and_comes_back(
    make_node: Callable[..., DetectorAgent],
) -> None:
    card = DetectorCard(4)
    card.start()
    try:
        node = make_node("det-dead", card.path, parity="N", stopbits=2)
        assert node.read() is not None
        card.answering = False
        assert node.read() is None
        assert node.faults() == {"card_silent"}
        card.answering = True
        assert node.read() is not None
        assert node.faults() == set()
    finally:
        card.stop()


def test_the_node_writes_the_cards_configuration_and_the_card_keeps_it(
    make_node: Callable[..., DetectorAgent],
) -> None:
    card = DetectorCard(4, line=RtuLine(transport="socket"))
    card.line.start()
    card.start()
    try:
        node = make_node("det-conf", card.path)
        client = node.client
        assert client.connect()
        answer = client.read_holding_registers(0, count=5, device_id=1)
        assert answer.registers == [1, 192, 2, 1, 5]  # unit 1, 19200 8E1, sens. 5
        assert not client.write_register(4, 8, device_id=1).isError()
        assert card.sensitivity == 8
        refused = client.write_register(1, 96, device_id=1)  # baud: DIP switches
        assert isinstance(refused, ExceptionResponse)
        assert refused.exception_code == 0x02
        refused = client.write_register(0, 248, device_id=1)  # unit ids end at 247
        assert isinstance(refused, ExceptionResponse)
        assert refused.exception_code == 0x03
        coils = client.read_coils(0, count=1, device_id=1)  # not a card function
        assert isinstance(coils, ExceptionResponse)
        assert coils.exception_code == 0x01
        assert card.holding() == [1, 192, 2, 1, 8]
        # readdress the card to 9: the node set to unit 9 reads it, unit 1 times out
        assert not client.write_register(0, 9, device_id=1).isError()
        assert make_node("det-nine", card.path, unit=9).read() is not None
    finally:
        card.stop()
        card.line.close()


@pytest.mark.parametrize(
    ("node_framing", "answers"),
    [
        ({"baudrate": 19_200, "parity": "N", "stopbits": 2}, True),
        ({"baudrate": 9_600, "parity": "N", "stopbits": 2}, False),
        ({"baudrate": 19_200, "parity": "N", "stopbits": 1}, False),
    ],
)
def test_a_card_hears_only_a_node_at_its_framing(
    make_node: Callable[..., DetectorAgent],
    node_framing: dict[str, Any],
    *,
    answers: bool,
) -> None:
    card = DetectorCard(2, framing=Framing(baudrate=19_200, parity="N", stopbits=2))
    card.start()
    try:
        node = make_node("det-framing", card.path, **node_framing)
        assert (node.read() is not None) is answers
        assert node.faults() == (set() if answers else {"card_silent"})
    finally:
        card.stop()


def test_the_settings_default_to_the_cards_documented_framing(tmp_path: Path) -> None:
    base: dict[str, Any] = {"kind": "loop_detector", "data_dir": tmp_path}
    settings = DetectorSettings(device_id="det-defaults", **base)
    assert str(settings.framing) == "19200 8E1"
    assert settings.unit == 1
    written = {"device_id": "d", "parity": "even", **base}  # as node.toml says it
    assert DetectorSettings.model_validate(written).parity == "E"
    with pytest.raises(ValueError, match="parity"):
        DetectorSettings.model_validate(written | {"parity": "M"})
    with pytest.raises(ValueError, match="expected 8 data bits"):
        Framing(bytesize=7)
