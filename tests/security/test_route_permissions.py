"""Every /api route declares what it checks: a permission or a public reason.

Walks the routes of a real app (``create_app``) and the dependency tree of
each; a route passes when some dependency carries ``__permission__`` (from
``central.api.deps.permit`` / ``require``) or ``__public__`` (``public(why)``).
A new route that forgets fails here, naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.routing import APIRoute
from support.central import central_services

from central.app import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from fastapi.dependencies.models import Dependant
    from starlette.routing import BaseRoute

# Authentication itself (log in, refresh, who am I): before any permission.
AUTHENTICATION = "/api/v1/auth/"


def _markers(dependant: Dependant) -> list[object]:
    found: list[object] = []
    for dep in dependant.dependencies:
        call = dep.call
        found.extend(
            getattr(call, attr)
            for attr in ("__permission__", "__public__")
            if hasattr(call, attr)
        )
        found += _markers(dep)
    return found


def _flatten(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    # FastAPI keeps included routers as branches; their routes carry the
    # router's prefix already (no router here is included with another).
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from _flatten(original.routes)


def _app_routes(tmp_path: Path) -> list[APIRoute]:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    svc = central_services(url, tmp_path)
    routes = list(_flatten(create_app(svc).routes))
    svc.engine.dispose()
    return routes


def test_every_api_route_declares_its_permission(tmp_path: Path) -> None:
    routes = _app_routes(tmp_path)
    api = [r for r in routes if r.path.startswith("/api/")]
    assert len(api) > 50  # the walk sees the real app
    missing = [
        f"{sorted(r.methods or ())} {r.path}"
        for r in api
        if not r.path.startswith(AUTHENTICATION) and not _markers(r.dependant)
    ]
    assert missing == []


def test_metrics_is_not_public(tmp_path: Path) -> None:
    (metrics,) = [r for r in _app_routes(tmp_path) if r.path == "/metrics"]
    assert _markers(metrics.dependant)
    assert not any(isinstance(m, str) for m in _markers(metrics.dependant))
