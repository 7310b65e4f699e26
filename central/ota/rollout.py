"""Rollouts in waves that stop themselves: the pure planner.

A rollout takes its devices in waves — a canary, then waves growing by
``growth`` — and moves to the next wave only when every node of the
current one has installed and passed its health check. Nodes that do not
report within ``node_timeout_s`` count as failed (and are retried up to
``retries`` times). Once ``min_sample`` nodes have finished, a failure rate
at or above ``pause_at`` pauses the rollout and at or above ``cancel_at``
cancels it: a bad release stops spreading without anyone watching. Pinned
devices are never touched. Values in, a decision out; the service does the
I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from central.errors import InvalidError

NodeState = Literal["pending", "assigned", "succeeded", "failed"]
Action = Literal["assign", "wait", "pause", "cancel", "done"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How a rollout proceeds and when it stops itself."""

    canary: int = 2
    growth: float = 3.0
    min_sample: int = 2
    pause_at: float = 0.2
    cancel_at: float = 0.5
    node_timeout_s: float = 1800.0
    retries: int = 1

    def __post_init__(self) -> None:
        if (
            self.canary < 1
            or self.growth < 1
            or not 0 < self.pause_at <= self.cancel_at <= 1
        ):
            raise InvalidError(
                f"expected canary ≥ 1, growth ≥ 1, 0 < pause ≤ cancel ≤ 1: {self}"
            )


@dataclass(frozen=True, slots=True)
class Node:
    """One device in a rollout."""

    device: str
    state: NodeState = "pending"
    attempts: int = 0
    assigned_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the service should do now."""

    action: Action
    assign: tuple[str, ...] = ()
    timed_out: tuple[str, ...] = ()
    reason: str = ""
    wave: int = 0
    failure_rate: float = 0.0


def waves(
    devices: list[str], plan: Plan, *, pinned: frozenset[str] = frozenset()
) -> list[list[str]]:
    """Split the devices (in the given order, pinned ones left out) into waves."""
    todo = [d for d in devices if d not in pinned]
    out, size, i = [], plan.canary, 0
    while i < len(todo):
        out.append(todo[i : i + size])
        i += size
        size = max(size + 1, math.ceil(size * plan.growth))
    return out


@dataclass
class Rollout:
    """A rollout's nodes and waves (the service keeps it in the database)."""

    plan: Plan
    waves: list[list[str]]
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for wave in self.waves:
            for device in wave:
                self.nodes.setdefault(device, Node(device))


def report(rollout: Rollout, device: str, *, ok: bool, reason: str = "") -> None:
    """A node's outcome: installed and healthy, or failed (rolled back)."""
    node = rollout.nodes[device]
    rollout.nodes[device] = replace(
        node, state="succeeded" if ok else "failed", reason=reason
    )


def decide(rollout: Rollout, now: datetime) -> Decision:
    """The next step: assign a wave, wait, pause, cancel, or done."""
    plan = rollout.plan
    timed_out = []
    for device, node in list(rollout.nodes.items()):
        late = node.assigned_at is not None and now - node.assigned_at > timedelta(
            seconds=plan.node_timeout_s
        )
        if node.state == "assigned" and late:
            retry = node.attempts <= plan.retries
            rollout.nodes[device] = replace(
                node,
                state="pending" if retry else "failed",
                reason="" if retry else "timed out",
            )
            timed_out.append(device)
    finished = [n for n in rollout.nodes.values() if n.state in ("succeeded", "failed")]
    failed = sum(n.state == "failed" for n in finished)
    rate = failed / len(finished) if finished else 0.0
    if len(finished) >= plan.min_sample and rate >= plan.cancel_at:
        return Decision(
            "cancel",
            timed_out=tuple(timed_out),
            reason=f"{failed} of {len(finished)} failed",
            failure_rate=rate,
        )
    if len(finished) >= plan.min_sample and rate >= plan.pause_at:
        return Decision(
            "pause",
            timed_out=tuple(timed_out),
            reason=f"{failed} of {len(finished)} failed",
            failure_rate=rate,
        )
    for number, wave in enumerate(rollout.waves, start=1):
        states = [rollout.nodes[d].state for d in wave]
        if all(s in ("succeeded", "failed") for s in states):
            continue  # failures below the thresholds do not hold the rollout
        todo = tuple(d for d in wave if rollout.nodes[d].state == "pending")
        if todo:
            for d in todo:
                node = rollout.nodes[d]
                rollout.nodes[d] = replace(
                    node, state="assigned", attempts=node.attempts + 1, assigned_at=now
                )
            return Decision(
                "assign",
                assign=todo,
                timed_out=tuple(timed_out),
                wave=number,
                failure_rate=rate,
            )
        return Decision(
            "wait", timed_out=tuple(timed_out), wave=number, failure_rate=rate
        )
    return Decision(
        "done", timed_out=tuple(timed_out), wave=len(rollout.waves), failure_rate=rate
    )
