"""Shared fixtures: a real Mosquitto per test, real SQLite and PostgreSQL.

Every broker is the Debian ``mosquitto`` binary started on a free loopback
port with its own configuration (``baling.broker``). Databases are a fresh
SQLite file, and — for tests that take ``db_url`` — a fresh schema in the
PostgreSQL on 127.0.0.1:5432 (``CENTRAL_TEST_DATABASE_URL`` to point
elsewhere), skipped with the reason when none answers.
"""

from __future__ import annotations

import gc
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from baling.broker import Mosquitto, mosquitto_path

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PG_URL = os.environ.get(
    "CENTRAL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "skip with the reason"
        return f"PostgreSQL at {PG_URL} not reachable: {type(exc).__name__}: {exc}"[
            :300
        ]
    return None


_PG_SKIP: list[str | None] = []


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free port, stopped after the test."""
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed; the test command installs it")
    b = Mosquitto(data_dir=tmp_path / "broker")
    b.start()
    yield b
    b.stop(kill=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL (an empty schema) on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.sqlite3'}"
        return
    if not _PG_SKIP:
        _PG_SKIP.append(_pg_reachable())
    if _PG_SKIP[0] is not None:
        pytest.skip(_PG_SKIP[0])
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database URL in the test's directory."""
    return f"sqlite:///{tmp_path / 'central.sqlite3'}"


@pytest.fixture
def make_central(broker: Mosquitto, tmp_path: Path) -> Iterator[object]:
    """Build and start a :class:`central.main.Central` on the test broker."""
    from central.main import Central  # noqa: PLC0415 - keeps edge tests free of central
    from central.settings import CentralSettings  # noqa: PLC0415

    made: list[Central] = []

    def build(url: str, **overrides: object) -> Central:
        values: dict[str, object] = {
            "database_url": url,
            "jwt_secret": "x" * 40,
            "data_dir": tmp_path / "central",
            "broker_port": broker.port,
            "offline_after_s": 3600.0,
        }
        values.update(overrides)
        central = Central(CentralSettings(**values))  # type: ignore[arg-type]
        central.start()
        made.append(central)
        return central

    yield build
    for c in made:
        c.stop()


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A page in Debian's Chromium, driven by Playwright (no browser download).

    Playwright's sync API runs on greenlets made on this thread. Garbage is
    collected on whichever thread triggers the collector, and one CI run
    aborted inside the collector on an ingest worker's thread, with greenlet
    the only C++ extension loaded. So while a browser test runs the
    collector only runs when called, and at the end it runs here, on the
    greenlets' own thread, once Playwright's objects are let go.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed; the test command installs it")
    gc.disable()
    try:
        yield from _chromium_page(sync_api)
    finally:
        gc.enable()
        gc.collect()


def _chromium_page(sync_api: Any) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser.new_page(locale="zh-CN")
        browser.close()


@pytest.fixture
def serve_app() -> Iterator[Any]:
    """Serve an ASGI app with uvicorn in a thread; returns its base URL."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from baling.broker import free_port  # noqa: PLC0415

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(app: Any, port: int = 0) -> str:
        port = port or free_port()
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


# -- marks: what a test starts, so ``-m "not slow"`` is a quick loop ----------------
# A test is marked by the fixtures it uses (their whole closure), by what its
# module starts itself, and by where it lives. Marks are only ever added.
FIXTURE_MARKS: dict[str, str] = {
    "broker": "mqtt",
    "make_central": "mqtt",
    "browser_page": "browser",
}
# Modules that start a broker, a site, a browser or a database of their own.
SOURCE_MARKS: tuple[tuple[str, str], ...] = (
    ("Mosquitto(", "mqtt"),
    ("SecureSite(", "mqtt"),
    ("running_site(", "mqtt"),
    ("sync_playwright", "browser"),
    ("PgServer(", "postgres"),
)
# Over ~5 s each on the 2-core development machine (``pytest --durations``):
# whole journeys, fault runs, fuzzing, subprocess CLIs, the SUMO loop.
SLOW_PATHS: tuple[str, ...] = (
    "tests/e2e/",
    "tests/central/test_openapi_fuzz.py",
    "tests/security/test_ota_mtls.py",
    "tests/security/test_revocation.py",
    "tests/handheld/test_captures.py",
    "tests/test_deploy.py",
)
# Single tests elsewhere over ~5 s (``--durations`` of their modules, 2026-12-05).
SLOW_TESTS: frozenset[str] = frozenset(
    {
        "test_workers_sharing_the_ingest_never_deadlock",
        "test_last_will_marks_offline_and_sweep_catches_silence",
        "test_the_traffic_centre_computes_pushes_and_rolls_back_from_measured_flows",
        "test_losing_central_falls_back_to_the_schedule_and_back",
        # over 10 s in the quick loop's --durations (Hypothesis, real crops, CLIs)
        "test_well_checksummed_nonsense_never_raises",
        "test_real_crops_are_read",
        "test_audit_chain_does_not_grow_per_anonymous_failure",
        "test_cli_backup_and_restore",
        "test_x_forwarded_for_is_believed_only_from_named_proxies",
        "test_control_characters_are_stripped_on_the_way_in",
    }
)
_SOURCES: dict[Path, str] = {}


def marks_for(item: pytest.Item, root: Path) -> set[str]:
    """The marks ``item`` earns by its fixtures, its module's source and its path."""
    names = set(getattr(item, "fixturenames", ()))
    marks = {mark for fixture, mark in FIXTURE_MARKS.items() if fixture in names}
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("db_url") == "postgres":  # also when a test picks the case itself
        marks.add("postgres")
    if item.path not in _SOURCES:
        try:
            _SOURCES[item.path] = item.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            _SOURCES[item.path] = ""
    source = _SOURCES[item.path]
    marks |= {mark for needle, mark in SOURCE_MARKS if needle in source}
    try:
        where = item.path.relative_to(root).as_posix()
    except ValueError:
        where = item.path.as_posix()
    if where.startswith(SLOW_PATHS) or getattr(item, "originalname", "") in SLOW_TESTS:
        marks.add("slow")
    return marks


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Mark what each test starts; skip ``long`` runs unless ``BALING_LONG=1``."""
    for item in items:
        for mark in sorted(marks_for(item, config.rootpath)):
            if item.get_closest_marker(mark) is None:
                item.add_marker(getattr(pytest.mark, mark))
    if os.environ.get("BALING_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="a long fault run: python -m bench.fleet runs it")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)
