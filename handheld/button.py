"""The SOS button: one small interface, a GPIO driver and a simulator pin.

:class:`GpioSosButton` reads a push button through gpiozero (on a Pi its
native pin factory; gpiozero's ``MockFactory`` in tests).
:class:`FileSosButton` is the simulator pin for ``baling up`` and CI: the
level is the content of a file another process writes (``baling sim press``).
Settings choose one by URL: ``gpio:17`` or ``file:/path/to/pin``. The
gesture (long press, cancel) is decided in :mod:`handheld.press`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from edge.errors import SettingsError


class SosButton(Protocol):
    """What the agent needs from the button."""

    def pressed(self) -> bool:
        """Whether the button is held down now."""
        ...

    def close(self) -> None:
        """Release the pin."""
        ...


class GpioSosButton:
    """A normally-open push button between a GPIO pin and ground."""

    def __init__(self, pin: int) -> None:
        from gpiozero import Button  # noqa: PLC0415 - only on hardware or with a mock

        self._button = Button(pin, pull_up=True, bounce_time=None)

    def pressed(self) -> bool:
        """Whether the button is held down now."""
        return bool(self._button.is_pressed)

    def close(self) -> None:
        """Release the pin."""
        self._button.close()


class FileSosButton:
    """The simulator pin: pressed while the file holds ``1``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def pressed(self) -> bool:
        """Whether the file says the button is held down."""
        try:
            return self.path.read_bytes()[:1] == b"1"
        except OSError:
            return False

    def close(self) -> None:
        """Nothing to release."""


def open_button(url: str) -> SosButton:
    """Open the button a settings URL names.

    Raises:
        SettingsError: the URL is neither ``gpio:<pin>`` nor ``file:<path>``.
    """
    scheme, _, rest = url.partition(":")
    if scheme == "gpio" and rest.isdigit():
        return GpioSosButton(int(rest))
    if scheme == "file" and rest:
        return FileSosButton(Path(rest))
    raise SettingsError(
        f"expected sos_button as gpio:<pin> or file:<path>, got {url!r}"
    )
