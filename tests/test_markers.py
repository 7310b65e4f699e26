"""Every test that needs a broker, a database server or a browser says so.

``pytest -m "not mqtt and not postgres and not browser"`` must run on a
machine without those services, and ``-m "not slow"`` must stay a quick
loop. This checks the marks of every test collected in the same run
against its own evidence (fixtures, what the module starts), independent
of how ``conftest.py`` derives them. It checks marks, not durations.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[1]

# (what gives it away, the mark it needs)
FIXTURE_EVIDENCE = {
    "broker": "mqtt",
    "make_central": "mqtt",
    "browser_page": "browser",
}
# Split, so that this module's own source is no evidence against itself.
SOURCE_EVIDENCE = (
    ("Mosquitto" + "(", "mqtt"),
    ("SecureSite" + "(", "mqtt"),
    ("running_site" + "(", "mqtt"),
    ('"baling.cli",\n            "up"', "mqtt"),
    ("play" + "wright", "browser"),
    ("pg" + "_ctl", "postgres"),
)
SLOW_DIRS = ("tests/e2e/",)


def test_the_service_marks_are_registered() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_options = options["tool"]["pytest"]["ini_options"]
    registered = {line.split(":", 1)[0] for line in pytest_options["markers"]}
    assert {"mqtt", "postgres", "browser", "slow"} <= registered
    assert "--strict-markers" in pytest_options["addopts"]


def unmarked(items: list[pytest.Item]) -> list[str]:
    """``nodeid: mark`` for each mark a test's evidence asks for and it lacks."""
    sources: dict[Path, str] = {}
    missing: list[str] = []
    for item in items:
        path = Path(item.path)
        if path not in sources:
            try:
                sources[path] = path.read_text(encoding="utf-8")
            except OSError:  # moved away since it was collected: no evidence
                sources[path] = ""
        needs = {
            mark
            for fixture, mark in FIXTURE_EVIDENCE.items()
            if fixture in getattr(item, "fixturenames", ())
        }
        needs |= {mark for text, mark in SOURCE_EVIDENCE if text in sources[path]}
        if path.relative_to(ROOT).as_posix().startswith(SLOW_DIRS):
            needs.add("slow")
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("db_url") == "postgres":
            needs.add("postgres")
        missing.extend(
            f"{item.nodeid}: {mark}"
            for mark in sorted(needs)
            if item.get_closest_marker(mark) is None
        )
    return missing


def test_every_collected_test_carries_the_marks_of_what_it_starts(
    request: pytest.FixtureRequest,
) -> None:
    missing = unmarked(request.session.items)
    assert not missing, "expected these marks, got none:\n" + "\n".join(missing)
