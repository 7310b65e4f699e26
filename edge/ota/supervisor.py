"""``baling supervise``: start the node from its current slot, again and again.

The supervisor is the node's bootloader, and like one it is never updated
over the air: it runs from the factory install (systemd starts it), settles
an interrupted update (:meth:`Slots.recover`), and starts the node as a
child with ``PYTHONPATH`` set to the resolved current slot, so the slot's
``edge``, ``baling`` and kind packages shadow the factory ones. The child
exits with :data:`RESTART` to be started again (after an install or a
rollback). A release on trial that does not stay up is started at most
``max_boots`` times, then rolled back; the reason is left in
``<slots>/last.json`` for the node to report. A committed release that
crashes is restarted with a growing back-off, as systemd would.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from typing import TYPE_CHECKING

from edge.ota.client import RESTART
from edge.ota.slots import Slots

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from edge.clock import Clock

logger = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def child_env(slots: Slots, base: dict[str, str]) -> dict[str, str]:
    """The node's environment: its slot first on the path, its version."""
    env = {**base, "BALING_NODE_OTA_SLOTS_DIR": str(slots.root)}
    active = slots.active()
    if active is not None:
        code = str((slots.slots / active).resolve())
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (code, base.get("PYTHONPATH", "")) if p
        )
        env["BALING_NODE_VERSION"] = slots.version(active) or "0"
    return env


def supervise(
    command: list[str],
    *,
    slots_dir: Path,
    clock: Clock,
    stop: threading.Event,
    max_boots: int = 2,
) -> int:
    """Run ``command`` (the node) until ``stop``; return the last exit status."""
    slots = Slots(slots_dir)
    failures, last = 0, 0
    while not stop.is_set():
        outcome = slots.recover(clock.now(), max_boots=max_boots)
        if outcome == "rolled_back":
            reason = f"the new release did not stay up (exit status {last})"
            if last == 0:
                reason = "the new release was not committed before its deadline"
            logger.error("Rolled back: %s", reason)
            (slots.root / "last.json").write_text(
                json.dumps({"reason": reason}), encoding="utf-8"
            )
        env = child_env(slots, dict(os.environ))
        logger.info("Starting the node from %s", env.get("PYTHONPATH", "the factory"))
        proc = subprocess.Popen(command, env=env)
        while proc.poll() is None:
            if stop.wait(0.2):
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                return 0
        last = proc.returncode
        if last == RESTART:
            failures = 0
            continue
        if last == 0:
            return 0
        failures += 1
        logger.error("The node exited with status %d", last)
        if slots.trial() is None:  # a committed release crashed: back off
            stop.wait(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1])
    return last
