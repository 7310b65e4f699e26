"""Sign messages: templates, the sign's checks, priorities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.guidance import signs
from central.guidance.signs import Line, Message, SignError, SignSpec

T = datetime(2026, 12, 5, 8, tzinfo=UTC)
SIGN = SignSpec(width_px=128, height_px=48)  # 8 characters, 3 lines


def test_templates_fit_a_small_sign() -> None:
    assert (SIGN.columns, SIGN.rows) == (8, 3)
    tt = signs.travel_time("火车站", 640, free_flow_s=240, at=T)
    assert [line.text for line in signs.check(tt, SIGN).lines] == [
        "至火车站",
        "约11分钟",
    ]
    assert tt.lines[1].colour == "red"  # 2.7 times free flow
    warning = signs.check(signs.incident_warning("巴陵大道", 2, at=T), SIGN)
    assert warning.lines[1] == Line("第2车道受阻", "red")


def test_a_sign_refuses_a_message_too_long_for_it() -> None:
    long_line = Message("slogan", (Line("文明交通从我做起安全出行"),), made_at=T)
    with pytest.raises(SignError, match="at most 8 characters, got 12"):
        signs.check(long_line, SIGN)
    many = signs.slogan("一/二/三/四", at=T)
    with pytest.raises(SignError, match="at most 3 lines"):
        signs.check(many, SIGN)
    assert signs.cells("G107 5km") == 4  # half-width characters are half a cell
    signs.check(Message("slogan", (Line("G107国道5km"),), made_at=T), SIGN)


def test_a_sign_refuses_what_its_font_and_leds_cannot_show() -> None:
    emoji = Message("slogan", (Line("注意🚗"),), made_at=T)
    with pytest.raises(SignError, match="GB2312"):
        signs.check(emoji, SIGN)
    blue = Message("slogan", (Line("注意", "blue"),), made_at=T)
    with pytest.raises(SignError, match="colour"):
        signs.check(blue, SIGN)
    with pytest.raises(ValueError, match="at least one"):
        SignSpec(width_px=8, height_px=16)


def test_incident_above_travel_time_above_slogan_newest_among_equals() -> None:
    slogan = signs.slogan("安全行车", at=T + timedelta(minutes=5))
    tt = signs.travel_time("火车站", 300, free_flow_s=240, at=T)
    newer = signs.travel_time(
        "火车站", 360, free_flow_s=240, at=T + timedelta(minutes=1)
    )
    incident = signs.incident_warning("巴陵大道", None, at=T)
    assert signs.choose([slogan, tt, newer]) is newer
    assert signs.choose([slogan, tt, incident, newer]) is incident
    assert signs.choose([]) is None
