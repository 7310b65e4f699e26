"""The SOS incident's states, repeats and escalation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.errors import ConflictError
from central.police.sos import SosRules, advance, due, is_delayed

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
RULES = SosRules()


def test_lifecycle_and_refusals() -> None:
    assert advance("raised", "acknowledged") == "acknowledged"
    assert advance("acknowledged", "assigned") == "assigned"
    assert advance("assigned", "resolved") == "resolved"
    assert advance("raised", "false_alarm") == "false_alarm"
    with pytest.raises(ConflictError, match="raised cannot become resolved"):
        advance("raised", "resolved")
    with pytest.raises(ConflictError, match="closed"):
        advance("resolved", "acknowledged")


def test_repeats_until_acknowledged_and_escalates_once_at_30s() -> None:
    def at(s: float, **kw: object) -> list[str]:
        args: dict[str, object] = {
            "phase": "raised",
            "raised_at": T0,
            "last_alert_at": None,
            "escalated": False,
        }
        args.update(kw)
        return list(due(now=T0 + timedelta(seconds=s), rules=RULES, **args))  # type: ignore[arg-type]

    assert at(5) == []
    assert at(10) == ["repeat"]
    assert at(12, last_alert_at=T0 + timedelta(seconds=10)) == []
    assert at(29.9, last_alert_at=T0 + timedelta(seconds=20)) == []
    assert at(30, last_alert_at=T0 + timedelta(seconds=25)) == ["escalate"]
    assert at(40, escalated=True, last_alert_at=T0 + timedelta(seconds=30)) == [
        "repeat"
    ]
    assert at(100, phase="acknowledged") == []


def test_delayed_when_heard_late() -> None:
    assert not is_delayed(T0, T0 + timedelta(seconds=2), RULES)
    assert is_delayed(T0, T0 + timedelta(seconds=60), RULES)
    with pytest.raises(ValueError, match="positive"):
        SosRules(radius_m=0)
