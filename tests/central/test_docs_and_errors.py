"""API docs that work offline; validation errors in Chinese per field.

``/docs`` and ``/redoc`` name no external host and every asset they load is
served by central itself (Swagger UI 5, which reads OpenAPI 3.1). A 422 keeps
FastAPI's ``detail`` list (type, loc, msg) for API clients and adds a Chinese
``message`` per error and in all; Open311's paths keep FastAPI's answer.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.central import central_services

from central.api.validation import translate, validation_handler
from central.app import create_app
from central.operators.auth import create_operator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery"


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    svc = central_services(sqlite_url, tmp_path)
    engine = svc.engine
    with Session(engine) as s:
        create_operator(
            s,
            username="desk",
            password=PASSWORD,
            role="complaints",
            now=svc.clock.now(),
        )
    with TestClient(create_app(svc)) as client:
        r = client.post(
            "/api/v1/auth/token", data={"username": "desk", "password": PASSWORD}
        )
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client
    engine.dispose()


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if tag in {"script", "link", "img"} and name in {"src", "href"} and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_outside(api: TestClient, page: str) -> None:
    r = api.get(page)
    assert r.status_code == 200
    assert not re.search(r"https?://", r.text), "an external host in " + page
    parser = _Assets()
    parser.feed(r.text)
    assert parser.urls, "the page loads its viewer"
    scripts = re.findall(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""", r.text)
    for url in [*parser.urls, *scripts]:
        assert url.startswith("/"), url
        got = api.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 100, url
    if page == "/docs":
        bundle = api.get("/docs-static/swagger-ui-bundle.js").text
        assert re.search(r'"5\.\d+\.\d+"', bundle), "Swagger UI 5 reads OpenAPI 3.1"
        assert api.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_a_bad_value_is_named_in_chinese_and_detail_stays(api: TestClient) -> None:
    r = api.put(
        "/api/v1/complaints/setup/services/noise",
        json={"limit_days": 0, "department": "x" * 40},
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    by_field = {tuple(d["loc"]): d for d in detail}
    # The API's own shape is kept for clients ...
    assert by_field["body", "limit_days"]["type"] == "greater_than_equal"
    assert by_field["body", "limit_days"]["msg"].startswith("Input should be")
    # ... and each error says in Chinese which field and what is wrong.
    assert by_field["body", "limit_days"]["message"] == "「办理时限（天）」不能小于 1"
    assert by_field["body", "name"]["message"] == "「名称」必须填写"
    assert by_field["body", "department"]["message"] == "「承办部门」最多 32 个字"
    message = r.json()["message"]
    assert "「办理时限（天）」不能小于 1" in message
    assert "「名称」必须填写" in message


def test_query_and_path_errors_too(api: TestClient) -> None:
    r = api.get("/api/v1/complaints", params={"limit": 0})
    assert r.json()["detail"][0]["message"] == "「条数」不能小于 1"
    r = api.get("/api/v1/complaints/abc")
    assert r.status_code == 422
    assert "应为整数" in r.json()["message"]


def test_paths_outside_the_api_keep_fastapis_answer() -> None:
    """Open311's clients read the spec's format: no Chinese added there."""
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_handler)  # type: ignore[arg-type]

    @app.get("/open311/v2/things/{n}")
    def thing(n: int) -> int:
        return n

    @app.get("/api/v1/things/{n}")
    def api_thing(n: int) -> int:
        return n

    with TestClient(app) as client:
        outside = client.get("/open311/v2/things/x").json()
        inside = client.get("/api/v1/things/x").json()
    assert set(outside) == {"detail"}
    assert "message" not in outside["detail"][0]
    assert inside["detail"][0]["message"] == "「n」应为整数"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            {
                "type": "literal_error",
                "loc": ("body", "kind"),
                "msg": "",
                "ctx": {"expected": "'kiosk' or 'camera'"},
            },
            "「设备类型」只能是 kiosk、camera",
        ),
        ({"type": "missing", "loc": ("body",), "msg": ""}, "「请求内容」必须填写"),
        (
            {
                "type": "too_long",
                "loc": ("body", "members"),
                "msg": "",
                "ctx": {"max_length": 200},
            },
            "「成员」最多 200 项",
        ),
        (
            {
                "type": "string_too_long",
                "loc": ("body", "members", 2),
                "msg": "",
                "ctx": {"max_length": 64},
            },
            "「成员第 3 项」最多 64 个字",
        ),
        ({"type": "something_new", "loc": ("query", "x"), "msg": ""}, "「x」不正确"),
    ],
)
def test_translations(error: dict[str, object], said: str) -> None:
    assert translate(error) == said
