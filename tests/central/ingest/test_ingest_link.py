"""The ingest link's buffered reads (edge.bus._BufferedSocket) on a real socket pair.

paho reads a packet in pieces (the command byte, the length bytes, the
rest); the ingest link serves those pieces from one large read. The whole
link runs against Mosquitto in tests/central/test_ingest.py.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from edge.bus import _BufferedSocket

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    b.setblocking(False)  # noqa: FBT003 - as paho sets it
    with a, b:
        yield a, b


def test_small_reads_are_served_from_one_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    writer, reader = pair
    buffered = _BufferedSocket(reader)
    writer.sendall(b"\x30\x05hello\x30\x02ok")
    assert buffered.recv(1) == b"\x30"
    assert buffered.pending() == 10  # the rest waits here, not in the kernel
    assert buffered.recv(1) == b"\x05"
    assert buffered.recv(5) == b"hello"
    assert buffered.recv(1) == b"\x30"
    assert buffered.recv(100) == b"\x02ok"  # never more than what is there
    assert buffered.pending() == 0
    with pytest.raises(BlockingIOError):
        buffered.recv(1)
    writer.sendall(b"late")
    assert buffered.recv(10) == b"late"  # a read that fits goes straight through
    writer.close()
    assert buffered.recv(1) == b""  # the end of the stream, as paho expects
    buffered.close()


def test_it_is_the_socket_for_select_and_send(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    writer, reader = pair
    buffered = _BufferedSocket(reader)
    assert buffered.fileno() == reader.fileno()
    assert buffered.send(b"ack") == 3
    assert writer.recv(3) == b"ack"
    writer.close()
    buffered.close()
