import pytest

from central.operators.access import Access, ForbiddenError, check_lookup
from central.operators.auth import Principal

ACCESS = Access()


@pytest.mark.parametrize(
    ("who", "site", "obj", "act", "ok"),
    [
        (Principal("root", "admin"), "lukou", "policy", "write", True),
        (
            Principal("li", "traffic", ("xinqiang",)),
            "xinqiang",
            "devices/signal_controller",
            "command",
            True,
        ),
        (
            Principal("li", "traffic", ("xinqiang",)),
            "lukou",
            "devices/signal_controller",
            "command",
            False,
        ),
        (
            Principal("li", "traffic", ("xinqiang",)),
            "xinqiang",
            "policy",
            "write",
            False,
        ),
        (
            Principal("wang", "technician", ("xinqiang", "lukou")),
            "lukou",
            "devices/camera",
            "register",
            True,
        ),
        (Principal("wang", "technician", ("xinqiang",)), "*", "policy", "write", False),
        (Principal("zhao", "police"), "lukou", "devices/handheld", "read", True),
        (Principal("zhao", "police"), "lukou", "devices/camera", "command", False),
        (Principal("chen", "complaints"), "lukou", "enrolment", "create", False),
    ],
)
def test_roles_and_district_scope(
    who: Principal,
    site: str,
    obj: str,
    act: str,
    ok: bool,
) -> None:
    assert ACCESS.allowed(who, site=site, obj=obj, act=act) is ok


def test_refusal_names_role_scope_and_request() -> None:
    with pytest.raises(
        ForbiddenError,
        match=r"li \(traffic, scope \['xinqiang'\]\) may not "
        r"command devices/cab-9 at site 'lukou'",
    ):
        ACCESS.check(
            Principal("li", "traffic", ("xinqiang",)),
            site="lukou",
            obj="devices/cab-9",
            act="command",
        )


def test_a_changed_scope_is_a_new_subject() -> None:
    access = Access()
    assert access.allowed(
        Principal("li", "traffic", ("lukou",)),
        site="lukou",
        obj="devices/loop_detector",
        act="command",
    )
    assert not access.allowed(
        Principal("li", "traffic", ("xinqiang",)),
        site="lukou",
        obj="devices/loop_detector",
        act="command",
    )


def test_lookups_need_a_stated_reason() -> None:
    officer = Principal("zhao", "police", ("lukou",))
    reason = check_lookup(
        ACCESS, officer, site="lukou", reason="  警情 2026-1129-017 核查  "
    )
    assert reason == "警情 2026-1129-017 核查"
    with pytest.raises(ForbiddenError, match="stated reason"):
        check_lookup(ACCESS, officer, site="lukou", reason=" ")
    with pytest.raises(ForbiddenError, match="may not read lookup"):
        check_lookup(
            ACCESS, Principal("li", "traffic"), site="lukou", reason="curious today"
        )
    with pytest.raises(ForbiddenError, match="at site 'xinqiang'"):
        check_lookup(ACCESS, officer, site="xinqiang", reason="警情 2026-1129-018")
