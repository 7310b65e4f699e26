"""``baling central`` on its own: settings from CENTRAL_*, fail fast, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from support.waiting import wait_until

from baling.broker import free_port

if TYPE_CHECKING:
    from pathlib import Path

    from baling.broker import Mosquitto

pytestmark = pytest.mark.mqtt


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_")}
    env.update(values)
    return env


def _health(port: int) -> dict[str, Any] | None:
    """Central's health answer, or None while it does not answer 200."""
    try:
        answer = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx2.TransportError:
        return None
    return dict(answer.json()) if answer.status_code == 200 else None


def test_weak_secret_stops_central_at_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "baling.cli", "central"],
        env=_env(
            CENTRAL_DATABASE_URL=f"sqlite:///{tmp_path}/c.db",
            CENTRAL_JWT_SECRET="changeme",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "jwt_secret" in proc.stderr


def test_central_serves_and_stops_on_sigterm(tmp_path: Path, broker: Mosquitto) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "baling.cli", "central"],
        env=_env(
            CENTRAL_DATABASE_URL=f"sqlite:///{tmp_path}/c.db",
            CENTRAL_JWT_SECRET="k" * 40,
            CENTRAL_DATA_DIR=str(tmp_path / "d"),
            CENTRAL_BROKER_PORT=str(broker.port),
            CENTRAL_HTTP_PORT=str(port),
        ),
    )
    try:
        health = wait_until(lambda: _health(port), 30, "central's /healthz")
        assert health == {"ok": True, "broker": True}
        assert (tmp_path / "d" / "admin-password.txt").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
