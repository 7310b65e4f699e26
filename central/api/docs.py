"""The API reference pages, served without the internet.

FastAPI's ``/docs`` and ``/redoc`` load Swagger UI and Redoc from a CDN (and
Redoc its fonts from Google), so on a county network without the internet
they are blank. :func:`mount_docs` serves both from the files the PyPI
package ``fastapi-offline`` ships (Swagger UI 5 and Redoc's standalone
bundle), under ``/docs-static``. The OpenAPI document itself is FastAPI's.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

STATIC = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs-static"


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` from packaged assets.

    The app must be made with ``docs_url=None, redoc_url=None``.
    """
    app.mount(PREFIX, StaticFiles(directory=STATIC), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} · 接口文档",
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{PREFIX}/favicon.png",
        )

    @app.get(redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} · 接口文档",
            redoc_js_url=f"{root}{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{PREFIX}/favicon.png",
            with_google_fonts=False,
        )
