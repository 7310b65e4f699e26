"""Start a Mosquitto broker with a configuration of our own.

Used by ``baling up`` (one machine, no configuration), by the tests (a real
broker on a free loopback port) and by the benchmarks. The settings that
matter for Baling are written here and explained in the README: QoS 1
queues large enough for a node's day-long backlog, no per-client in-flight
cap below the ingest batch, and persistence so a restart keeps sessions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from baling.errors import BalingError

logger = logging.getLogger(__name__)


class BrokerError(BalingError, RuntimeError):
    """The broker could not be started."""


# Ports browsers refuse to open (Chromium's and Firefox's "unsafe ports"
# above 10,000): a console or kiosk on one of them would never load.
BROWSER_UNSAFE = frozenset({10080})


def free_port() -> int:
    """A loopback TCP port that is free now.

    Picked below the kernel's ephemeral range, so an outgoing connection of
    ours (a client's local port) cannot take it before the server listens,
    and never one a browser refuses to open.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10000, max(10001, low))
        if port in BROWSER_UNSAFE:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # pragma: no cover - a very crowded machine
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_path() -> str | None:
    """Where the mosquitto binary is, if installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def write_config(
    path: Path, *, port: int, data_dir: Path, max_queued: int = 1_000_000
) -> Path:
    """Write a Mosquitto configuration for a plain loopback listener."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # Started as root, mosquitto drops to user "mosquitto", which cannot write
    # a persistence file into a directory we made; stay as the starting user.
    user = ["user root"] if os.geteuid() == 0 else []
    path.write_text(
        "\n".join(
            [
                *user,
                "per_listener_settings false",
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "persistence true",
                f"persistence_location {data_dir}/",
                "autosave_interval 30",
                # A node may come back with a day of backlog; the ingest consumer
                # acknowledges per batch, so in flight must exceed one batch.
                f"max_queued_messages {max_queued}",
                "max_queued_bytes 0",
                "max_inflight_messages 0",
                "max_keepalive 300",
                "max_packet_size 1048576",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


class Mosquitto:
    """A mosquitto process we own."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int | None = None,
        binary: str | None = None,
        conf: Path | None = None,
    ) -> None:
        found = binary or mosquitto_path()
        if found is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = found
        self.port = port or free_port()
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.conf = conf or write_config(
            data_dir / "mosquitto.conf", port=self.port, data_dir=data_dir / "persist"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its ACL file and, for new connections, the CRL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def watch(self, *paths: Path, interval: float = 0.25) -> None:
        """Reload whenever one of ``paths`` (the CRL, the ACL) changes.

        The one-host counterpart of a systemd ``.path`` unit: central
        rewrites the files, the broker's owner signals the broker.
        """

        def stamp() -> tuple[float, ...]:
            return tuple(p.stat().st_mtime if p.exists() else -1.0 for p in paths)

        def run() -> None:
            seen = stamp()
            while not self._watch_stop.wait(interval):
                now = stamp()
                if now != seen:
                    seen = now
                    logger.info("Broker files changed; reloading Mosquitto")
                    self.reload()

        self._watch_stop.clear()
        self._watcher = threading.Thread(target=run, name="broker-watch", daemon=True)
        self._watcher.start()

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the port accepts connections."""
        with (self.data_dir / "mosquitto.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self.proc.returncode}; "
                    f"see {self.data_dir / 'mosquitto.log'}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def stop(self, *, kill: bool = False) -> None:
        """Stop (SIGTERM saves persistence; ``kill`` is SIGKILL) and the watch."""
        self._watch_stop.set()
        self._halt(kill=kill)

    def _halt(self, *, kill: bool) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop gracefully and start again on the same port (the watch goes on)."""
        self._halt(kill=False)
        self.start()
