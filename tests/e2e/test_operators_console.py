"""The console's 用户管理 page in a real browser (Debian's Chromium, Playwright).

An admin creates an operator (one-time password shown once), changes role
and districts, disables them (their token stops working at once), resets a
password, and cannot disable the last admin; a non-admin does not see the
page; repeated failed logins get the Chinese back-off message; an expired
access token is renewed silently from the refresh cookie.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from sqlmodel import Session
from support.api import token
from support.central import central_services
from support.console import sign_in

from central.app import create_app
from central.operators.auth import create_operator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from central.api.deps import Services

pytestmark = [pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    svc = central_services(sqlite_url, tmp_path)
    with Session(svc.engine) as s:
        create_operator(
            s, username="root", password=PASSWORD, role="admin", now=svc.clock.now()
        )
    yield svc
    svc.engine.dispose()


def _me(base: str, token: str) -> int:
    return httpx2.get(
        f"{base}/api/v1/auth/me",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


def _change_disable_reset(page: Any, base: str, one_time: str) -> str:
    """Each change ends li's session at once; returns the reset password."""
    li_token = token(base, "li", one_time)
    assert _me(base, li_token) == 200
    page.select_option('#op-li select[data-field="role"]', "police")
    page.select_option('#op-li select[data-field="scope"]', ["rongjiawan"])
    page.click('#op-li button[data-action="save"]')
    page.wait_for_selector("text=已保存 li 的角色和辖区")
    assert _me(base, li_token) == 401  # the change ended li's session
    li_token = token(base, "li", one_time)
    page.click('#op-li button[data-action="toggle"]')
    page.wait_for_selector('#op-li [data-field="active"]:has-text("已停用")')
    assert _me(base, li_token) == 401
    page.click('#op-li button[data-action="toggle"]')
    page.wait_for_selector('#op-li [data-field="active"]:has-text("启用")')

    page.click('#op-li button[data-action="reset"]')
    page.wait_for_selector("text=已重置 li 的密码")
    fresh = page.inner_text("#operator-otp")
    assert fresh != one_time
    assert _me(base, token(base, "li", fresh)) == 200
    return str(fresh)


def test_admin_manages_operators_in_the_console(
    services: Services, browser_page: Any, serve_app: Any
) -> None:
    base = serve_app(create_app(services))
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/console/#operators")
    sign_in(page, "root", PASSWORD)
    page.wait_for_selector("#op-root")
    assert page.locator('#nav a[data-page="operators"]').is_visible()
    assert "系统管理员" in page.inner_text("#op-root")

    page.fill("#operator-form input[name=username]", "li")
    page.select_option("#operator-form select[name=role]", "traffic")
    page.select_option("#operator-form select[name=scope]", ["xinqiang", "gangkou"])
    page.click("#operator-form button[type=submit]")
    page.wait_for_selector("#operator-secret:not([hidden])")
    one_time = page.inner_text("#operator-otp")
    assert len(one_time) >= 12
    assert "已新建 li（交通指挥，新墙镇、筻口镇）" in page.inner_text("#operators-msg")
    page.wait_for_selector("#op-li")
    assert page.input_value('#op-li select[data-field="role"]') == "traffic"
    page.screenshot(path=str(ARTIFACTS / "console-operators.png"), full_page=True)

    fresh = _change_disable_reset(page, base, one_time)

    page.click('#op-root button[data-action="toggle"]')
    page.wait_for_selector("text=不能停用最后一个启用的系统管理员")

    actions = [r.action for r in services.audit.search(target="li", limit=20)]
    assert actions.count("operator.update") == 3
    assert actions.count("operator.password") == 1
    assert actions[-1] == "operator.create"

    # An expired or voided access token is renewed from the refresh cookie.
    page.evaluate("state.token = 'not-a-token'")
    page.click('#nav a[data-page="devices"]')
    page.wait_for_selector("#device-count:has-text('共 0 台')")
    assert page.locator("#shell").is_visible()

    # A non-admin signs in and does not see the page.
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    sign_in(page, "li", fresh)
    page.wait_for_selector("#shell:not([hidden])")
    assert "li（公安民警）" in page.inner_text("#who")
    assert not page.locator('#nav a[data-page="operators"]').is_visible()


def test_failed_logins_back_off_in_chinese(
    services: Services, browser_page: Any, serve_app: Any
) -> None:
    base = serve_app(create_app(services))
    page = browser_page
    page.goto(f"{base}/console/")
    for _ in range(6):
        sign_in(page, "root", "not the password")
        page.wait_for_selector("text=用户名或密码错误")
        page.evaluate("document.querySelector('#login-error').textContent = ''")
    sign_in(page, "root", PASSWORD)
    page.wait_for_selector("text=登录失败次数过多")
    assert "秒后再试" in page.inner_text("#login-error")
    page.screenshot(path=str(ARTIFACTS / "console-login-backoff.png"))
