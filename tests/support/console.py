"""Sign in on central's console in a browser, the way every console test starts.

The page is a Playwright page (typed ``Any``: Playwright ships no stubs for
the sync API the fixture hands out). What a test waits for after signing in
— the shell, the live stream, a page's rows — is the test's own.
"""

from __future__ import annotations

from typing import Any

FORM = "#login-form"


def sign_in(page: Any, user: str, password: str) -> None:
    """Fill the console's login form as ``user`` and submit it.

    Args:
        page: A Playwright page showing the console (any of its pages).
        user: The operator's username.
        password: Its password.
    """
    page.wait_for_selector(FORM, state="visible")
    page.fill(f"{FORM} input[name=username]", user)
    page.fill(f"{FORM} input[name=password]", password)
    page.click(f"{FORM} button[type=submit]")
