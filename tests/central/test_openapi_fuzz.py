"""Schemathesis against central's own OpenAPI document.

Every operation of the running central (real broker, real SQLite) gets
requests generated from its schema — valid ones and ones that break it —
as an admin who may call everything. No request may end in a server error
(bad input must get a 4xx that names what was wrong; the only 5xx are the
declared 503/504 of a node that did not answer), and every response must
be one the document declares.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from central.operators.auth import create_operator

if TYPE_CHECKING:
    from central.main import Central

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
PASSWORD = "correct horse battery"
# Requests that would end the run rather than test an answer.
# Per operation and mode: ~2,000 requests, the same every run (CI must not
# pass or fail by the draw). BALING_FUZZ_EXAMPLES=N draws N afresh each run.
EXAMPLES = int(os.environ.get("BALING_FUZZ_EXAMPLES", "10"))
FRESH = "BALING_FUZZ_EXAMPLES" in os.environ
# A 5xx the document does not declare fails status_code_conformance (and an
# unhandled exception propagates); a declared 503/504 is an honest answer.
CHECKS = [status_code_conformance, content_type_conformance]
SKIPPED = (
    "/api/v1/stream",  # server-sent events: an answer that never ends
    "/api/v1/auth/logout",  # ends the fuzzer's own session (no parameters to fuzz)
)


@pytest.fixture
def central(make_central: Any, sqlite_url: str) -> Central:
    # a pushed plan waits for a cabinet no junction here has
    built: Central = make_central(sqlite_url, signal_push_timeout_s=0.2)
    with Session(built.services.engine) as session:
        create_operator(
            session,
            username="fuzz",
            password=PASSWORD,
            role="admin",
            now=built.services.clock.now(),
        )
    return built


@pytest.fixture
def admin(central: Central) -> dict[str, str]:
    with TestClient(central.app) as client:
        r = client.post(
            "/api/v1/auth/token", data={"username": "fuzz", "password": PASSWORD}
        )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def api(central: Central) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", central.app)


def test_no_request_breaks_central(api: Any, admin: dict[str, str]) -> None:
    """Each operation, valid and invalid requests; every failure is collected."""
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(SKIPPED):
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                derandomize=not FRESH,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                case.call_and_validate(headers=admin, checks=CHECKS)

            try:
                call()
            except Unsatisfiable:  # nothing to break: no parameters, no body
                continue
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - try all
                failures.append(
                    f"{operation.method.upper()} {operation.path} ({mode.value}): "
                    f"{_said(exc)}"
                )
    assert operations > 50, f"only {operations} operations in the document"
    assert not failures, "\n\n".join(failures)


def _said(exc: BaseException) -> str:
    """What went wrong, without the reproduction noise."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    return "; ".join(" ".join(str(p).split())[:300] for p in parts)
