"""The 12345 closed loop as a state machine.

Pure. 待受理 → 已受理 / 不予受理 / 直接答复 → 分流 → 转办 (to a department)
→ 签收 / 退单 → 办理中 (one extension) → 已答复 → 回访 → 办结 / 重办. Each
action names the states it may start from, the state it leads to and the
roles that may take it; anything else is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from central.errors import ConflictError

LABELS = {
    "pending": "待受理",
    "accepted": "已受理",
    "rejected": "不予受理",
    "answered": "直接答复",
    "triaged": "分流",
    "assigned": "转办",
    "signed": "签收",
    "returned": "退单",
    "in_progress": "办理中",
    "replied": "已答复",
    "visited": "回访",
    "closed": "办结",
    "reopened": "重办",
}
OPEN311_CLOSED = frozenset({"rejected", "closed"})


@dataclass(frozen=True, slots=True)
class Step:
    """One action of the loop."""

    sources: frozenset[str]
    target: str
    roles: frozenset[str]
    label: str


DESK = frozenset({"complaints", "admin"})
DEPT = frozenset({"department", "admin"})
ACTIONS: dict[str, Step] = {
    "accept": Step(frozenset({"pending"}), "accepted", DESK, "受理"),
    "reject": Step(frozenset({"pending"}), "rejected", DESK, "不予受理"),
    "answer": Step(frozenset({"pending", "accepted"}), "answered", DESK, "直接答复"),
    "triage": Step(frozenset({"accepted", "returned"}), "triaged", DESK, "分流"),
    "assign": Step(frozenset({"triaged", "reopened"}), "assigned", DESK, "转办"),
    "sign": Step(frozenset({"assigned"}), "signed", DEPT, "签收"),
    "return": Step(frozenset({"assigned"}), "returned", DEPT, "退单"),
    "start": Step(frozenset({"signed"}), "in_progress", DEPT, "开始办理"),
    "extend": Step(frozenset({"in_progress"}), "in_progress", DEPT, "申请延期"),
    "reply": Step(frozenset({"in_progress", "signed"}), "replied", DEPT, "答复"),
    "visit": Step(frozenset({"replied", "answered"}), "visited", DESK, "回访"),
    "close": Step(
        frozenset({"visited", "replied", "answered"}), "closed", DESK, "办结"
    ),
    "redo": Step(frozenset({"visited", "replied"}), "reopened", DESK, "重办"),
}


def check(action: str, *, state: str, role: str, extended: bool) -> Step:
    """The step ``action`` takes from ``state`` for ``role``.

    Raises:
        ConflictError: unknown action, wrong state, wrong role, or a second
            extension; the message says which and what is allowed.
    """
    step = ACTIONS.get(action)
    if step is None:
        raise ConflictError(f"expected an action of {sorted(ACTIONS)}, got {action!r}")
    if state not in step.sources:
        allowed = sorted(LABELS[s] for s in step.sources)
        raise ConflictError(
            f"{step.label} needs a complaint that is {'/'.join(allowed)}, "
            f"this one is {LABELS.get(state, state)}"
        )
    if role not in step.roles:
        raise ConflictError(f"{step.label} is for {sorted(step.roles)}, not {role!r}")
    if action == "extend" and extended:
        raise ConflictError("a complaint may be extended once, and this one was")
    return step


def open311_status(state: str) -> str:
    """Open311's two statuses."""
    return "closed" if state in OPEN311_CLOSED else "open"
