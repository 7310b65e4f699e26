"""The technician's requests to central: what central says reaches the technician.

A real HTTP server (uvicorn on 127.0.0.1) answers as central does; every
failure comes back as :class:`EnrolError` with central's own words or with
advice, never as an HTTP library's exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from baling.broker import free_port
from provisioning.enroll import EnrolError, call

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "type": request.headers.get("content-type", ""),
            "auth": request.headers.get("authorization", ""),
            "body": body.decode(),
        }
    )


async def _refused(_request: Request) -> Response:
    return JSONResponse({"detail": "这个入网码已用过"}, status_code=409)


async def _refused_dict(_request: Request) -> Response:
    return JSONResponse({"detail": {"message": "时钟偏差过大"}}, status_code=422)


async def _broken(_request: Request) -> Response:
    return PlainTextResponse("<html>proxy error</html>", status_code=502)


async def _not_json(_request: Request) -> Response:
    return PlainTextResponse("<html>captive portal</html>")


APP = Starlette(
    routes=[
        Route("/api/v1/echo", _echo, methods=["GET", "POST"]),
        Route("/api/v1/refused", _refused),
        Route("/api/v1/refused-dict", _refused_dict),
        Route("/api/v1/broken", _broken),
        Route("/api/v1/not-json", _not_json),
    ]
)


@pytest.fixture
def base(serve_app: Callable[..., str]) -> str:
    return serve_app(APP)


def test_get_post_json_form_and_token_go_out_as_asked(base: str) -> None:
    assert call(f"{base}/api/v1/echo")["method"] == "GET"
    sent = call(f"{base}/api/v1/echo", {"csr": "x"}, token="t0k")
    assert sent["method"] == "POST"
    assert sent["type"] == "application/json"
    assert sent["auth"] == "Bearer t0k"
    assert '"csr"' in sent["body"]
    form = call(f"{base}/api/v1/echo", form={"username": "王"})
    assert form["type"] == "application/x-www-form-urlencoded"
    assert form["body"] == "username=%E7%8E%8B"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("refused", "这个入网码已用过"),
        ("refused-dict", "时钟偏差过大"),
        ("broken", "central answered HTTP 502"),
        ("not-json", "expected a JSON object from central"),
    ],
)
def test_central_s_refusals_reach_the_technician(
    base: str, path: str, message: str
) -> None:
    with pytest.raises(EnrolError, match=message):
        call(f"{base}/api/v1/{path}")


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:{free_port()}/api/v1/enrolment/K7QP",  # nobody listens
        "central.example/api/v1/enrolment/K7QP",  # no scheme
        "http://[::1/api/v1/enrolment/K7QP",  # not a URL
    ],
    ids=["nobody-listens", "no-scheme", "not-a-url"],  # stable across workers
)
def test_an_unreachable_central_is_an_enrol_error_with_advice(url: str) -> None:
    with pytest.raises(EnrolError, match="check the address"):
        call(url)
