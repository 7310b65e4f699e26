"""The cabinet's controller line: it reopens after the controller drops it."""

from __future__ import annotations

import socket
import threading
import time

from signal_controller.gbt20999 import Frame, FrameType, encode
from signal_controller.link import CONTROLLER_ID, ControllerLink


def _controller(server: socket.socket, accepted: list[float]) -> None:
    """Drop the first connection at once; greet the second with a heartbeat."""
    first, _ = server.accept()
    accepted.append(time.monotonic())
    first.close()
    second, _ = server.accept()
    accepted.append(time.monotonic())
    second.sendall(encode(Frame(FrameType.HEARTBEAT, CONTROLLER_ID, 1, 7)))
    time.sleep(0.5)
    second.close()


def test_a_dropped_line_is_reopened_with_the_back_off() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    accepted: list[float] = []
    thread = threading.Thread(target=_controller, args=(server, accepted))
    thread.start()
    link = ControllerLink(f"tcp:127.0.0.1:{port}")
    link.start()
    try:
        frame = link.frames.get(timeout=10)
    finally:
        link.stop()
        thread.join(timeout=5)
        server.close()
    assert (frame.type, frame.seq) == (FrameType.HEARTBEAT, 7)
    assert len(accepted) == 2
    # reopened by the back-off, not in a busy loop, and well inside its 5 s cap
    assert accepted[1] - accepted[0] < 5.5


def test_an_unreachable_controller_is_retried_until_it_listens() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    link = ControllerLink(f"tcp:127.0.0.1:{port}")
    link.start()
    try:
        time.sleep(0.5)  # a few refused attempts
        server = socket.create_server(("127.0.0.1", port))
        server.settimeout(10)
        conn, _ = server.accept()  # the link came back by itself
        conn.sendall(encode(Frame(FrameType.HEARTBEAT, CONTROLLER_ID, 1, 9)))
        assert link.frames.get(timeout=10).seq == 9
        conn.close()
        server.close()
    finally:
        link.stop()
