"""Wait until something holds, and say what was awaited when it never does.

One poll loop for every test that watches a broker, a thread or a database
catch up; it reads the monotonic clock and sleeps, and leaves the thing
being watched to the caller.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_INTERVAL_S = 0.05


class WaitTimeoutError(AssertionError):
    """The awaited condition never held (a test failure, not an error)."""


def wait_until(
    check: Callable[[], T | Literal[False] | None],
    timeout: float = DEFAULT_TIMEOUT_S,
    what: str | None = None,
    *,
    interval: float = DEFAULT_INTERVAL_S,
) -> T:
    """Call ``check`` until it returns something truthy; return that value.

    Args:
        check: What to poll; a predicate, or a look-up whose truthy result
            the caller wants back.
        timeout: Seconds to keep trying.
        what: What is awaited, in words, for the failure message; the
            function's name when not given.
        interval: Seconds between tries.

    Raises:
        ValueError: ``timeout`` or ``interval`` is not positive.
        WaitTimeoutError: ``check`` never returned a truthy value in time.

    Returns:
        The first truthy value ``check`` returned (typed without ``None``
        and ``False``, so a look-up's result can be used at once).
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError(
            f"expected timeout and interval > 0, got {timeout} and {interval}"
        )
    label = what or getattr(check, "__name__", repr(check))
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"expected {label} within {timeout:g} s, got {last!r} at the end"
            )
        time.sleep(interval)
        last = check()
    return last
