"""The 12345 loop: allowed steps, refusals with their reasons."""

from __future__ import annotations

import pytest

from central.complaints.workflow import check, open311_status
from central.errors import ConflictError


def test_the_whole_loop() -> None:
    path = [
        ("accept", "pending", "complaints"),
        ("triage", "accepted", "complaints"),
        ("assign", "triaged", "complaints"),
        ("sign", "assigned", "department"),
        ("start", "signed", "department"),
        ("extend", "in_progress", "department"),
        ("reply", "in_progress", "department"),
        ("visit", "replied", "complaints"),
        ("close", "visited", "complaints"),
    ]
    for action, state, role in path:
        check(action, state=state, role=role, extended=False)
    assert (
        check("return", state="assigned", role="department", extended=False).target
        == "returned"
    )
    assert (
        check("redo", state="visited", role="complaints", extended=False).target
        == "reopened"
    )
    assert open311_status("closed") == "closed"
    assert open311_status("in_progress") == "open"


@pytest.mark.parametrize(
    ("action", "state", "role", "extended", "words"),
    [
        ("sign", "pending", "department", False, "转办"),
        ("accept", "pending", "department", False, "complaints"),
        ("extend", "in_progress", "department", True, "once"),
        ("fly", "pending", "admin", False, "expected an action"),
        ("close", "pending", "admin", False, "待受理"),
    ],
)
def test_refusals_say_why(
    action: str, state: str, role: str, extended: bool, words: str
) -> None:
    with pytest.raises(ConflictError, match=words):
        check(action, state=state, role=role, extended=extended)
