"""The SOS button's two drivers behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.errors import SettingsError
from firmware_sim.sospin import set_level
from handheld.button import FileSosButton, GpioSosButton, open_button

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def test_gpio_button_reads_the_pin(mock_pins: MockFactory) -> None:
    button = open_button("gpio:17")
    assert isinstance(button, GpioSosButton)
    pin = mock_pins.pin(17)
    assert not button.pressed()
    pin.drive_low()  # the button shorts the pulled-up pin to ground
    assert button.pressed()
    pin.drive_high()
    assert not button.pressed()
    button.close()


def test_file_pin(tmp_path: Path) -> None:
    pin = tmp_path / "sos.pin"
    button = open_button(f"file:{pin}")
    assert isinstance(button, FileSosButton)
    assert not button.pressed()  # no file yet: released
    set_level(pin, pressed=True)
    assert button.pressed()
    set_level(pin, pressed=False)
    assert not button.pressed()


@pytest.mark.parametrize("url", ["gpio:x", "usb:1", "file:"])
def test_bad_urls_are_named(url: str) -> None:
    with pytest.raises(SettingsError, match="gpio:<pin> or file:<path>"):
        open_button(url)
