"""The kiosk's touchscreen app: server-rendered pages in Chinese, offline-first.

Pages are rendered here (Jinja2, autoescaped) from the content cache the
agent keeps, so they load fast on a Pi and work without central. Big text
and big targets by default; 适老化 mode makes them bigger still with higher
contrast. After ``idle_s`` without a touch a visible countdown starts, then
everything typed is dropped and the session ends (``/reset``).
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import segno
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from kiosk.errors import CentralRefusedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from kiosk.printer import ReceiptLines
    from kiosk.settings import KioskSettings

HERE = Path(__file__).parent
RECEIPTS_KEPT = 8  # copies of this session's receipts the screen can show again
KINDS = {
    "notice": "政务公开",
    "guide": "办事指南",
    "place": "地名查询",
    "utility": "公用事业",
}


class ComplaintForm(BaseModel):
    """The complaint form's fields."""

    service_code: str
    description: str
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    identity: str = "anonymous"
    name: str = ""
    phone: str = ""


class Backend(Protocol):
    """What the screen needs from the kiosk agent."""

    ks: KioskSettings
    content: dict[str, Any]
    sessions: int

    def new_complaint(self, fields: dict[str, Any]) -> dict[str, Any]:
        """File a complaint (outbox, receipt)."""
        ...

    def rate(self, code: str, score: int) -> dict[str, Any]:
        """Store the citizen's rating durably."""
        ...

    def touch(self) -> None:
        """Someone is using the screen."""
        ...

    def status(self, code: str) -> dict[str, Any]:
        """A complaint's state from central."""
        ...

    def slots(self, service: str) -> list[dict[str, Any]]:
        """Appointment slots from central."""
        ...

    def book(self, slot_id: int, name: str, phone: str) -> dict[str, Any]:
        """Book a slot at central."""
        ...


def create_kiosk_app(backend: Backend) -> FastAPI:  # noqa: C901 - small routes
    """Build the kiosk's app around its agent."""
    app = FastAPI(
        title="数字巴陵信息亭", docs_url=None, redoc_url=None, openapi_url=None
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    # What the printer was sent, by 查询码, until the session ends: the receipt
    # page shows a copy (a demo has no paper; a jammed printer has none either).
    receipts: dict[str, ReceiptLines] = {}

    @app.middleware("http")
    async def touched(request: Request, call_next: Any) -> Response:  # noqa: ANN401
        if not request.url.path.startswith("/static"):
            backend.touch()
        response: Response = await call_next(request)
        return response

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:  # noqa: ANN401
        return templates.TemplateResponse(
            request,
            name,
            {
                "care": request.cookies.get("care") == "1",
                "idle_s": backend.ks.idle_s,
                "countdown_s": backend.ks.countdown_s,
                "kinds": KINDS,
                **context,
            },
        )

    def message(request: Request, title: str, text: str) -> HTMLResponse:
        return page(request, "message.html", title=title, text=text)

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        return page(request, "home.html")

    @app.get("/care")
    def care(on: int = 1) -> RedirectResponse:
        out = RedirectResponse("/", status_code=303)
        out.set_cookie("care", "1" if on else "0", samesite="strict")
        return out

    @app.get("/reset")
    def reset() -> RedirectResponse:
        backend.sessions += 1
        receipts.clear()
        out = RedirectResponse("/", status_code=303)
        out.delete_cookie("care")
        return out

    @app.get("/info/{kind}", response_class=HTMLResponse)
    def info(request: Request, kind: str, q: str = "") -> HTMLResponse:
        if kind not in KINDS:
            return message(request, "没有这一栏目", "请返回首页重新选择。")
        items = backend.content.get("items", {}).get(kind, [])
        if q:
            items = [i for i in items if q in i["title"] or q in i["body"]]
        return page(
            request, "info.html", kind=kind, title=KINDS[kind], items=items, q=q
        )

    @app.get("/complaint", response_class=HTMLResponse)
    def complaint_form(request: Request) -> HTMLResponse:
        places = [p["title"] for p in backend.content.get("items", {}).get("place", [])]
        return page(
            request,
            "complaint.html",
            map_geojson=backend.content.get("map"),
            services=backend.content.get("services", []),
            places=places,
        )

    @app.post("/complaint")
    def complaint(request: Request, form: Annotated[ComplaintForm, Form()]) -> Response:
        real = form.identity == "real"
        description, name, phone = form.description, form.name, form.phone
        if not description.strip() or len(description) > 2000:  # noqa: PLR2004
            return message(request, "请填写问题描述", "描述不能为空，最多两千字。")
        if real and not (name.strip() and phone.strip()):
            return message(request, "实名投诉需要姓名和电话", "也可以选择匿名投诉。")
        done = backend.new_complaint(
            {
                "service_code": form.service_code,
                "description": description.strip(),
                "place": form.place.strip()[:200],
                "lat": form.lat,
                "lon": form.lon,
                "real_name": real,
                "name": name.strip()[:64] if real else "",
                "phone": phone.strip()[:32] if real else "",
            }
        )
        if "receipt" in done:
            receipts[done["code"]] = done["receipt"]
            while len(receipts) > RECEIPTS_KEPT:
                del receipts[next(iter(receipts))]
        return RedirectResponse(
            f"/receipt/{done['code']}?printed={done.get('printed', 'none')}",
            status_code=303,
        )

    @app.get("/receipt/{code}", response_class=HTMLResponse)
    def receipt(request: Request, code: str, printed: str = "ok") -> HTMLResponse:
        qr = segno.make(code, error="m").svg_inline(scale=8, title=f"查询码 {code}")
        return page(
            request,
            "receipt.html",
            code=code,
            printed=printed,
            qr=qr,
            paper=receipts.get(code),
        )

    @app.get("/status", response_class=HTMLResponse)
    def status_form(request: Request) -> HTMLResponse:
        return page(request, "status.html", result=None, code="")

    @app.post("/status", response_class=HTMLResponse)
    def status(request: Request, code: Annotated[str, Form()]) -> HTMLResponse:
        try:
            result = backend.status(code)
        except CentralRefusedError:
            return message(request, "查询码不存在", "请核对回执上的查询码后再试。")
        except OSError:
            return message(request, "网络暂时不通", "请稍后再查，您的投诉不会丢失。")
        return page(request, "status.html", result=result, code=result["code"])

    @app.post("/rate", response_class=HTMLResponse)
    def rate(
        request: Request, code: Annotated[str, Form()], score: Annotated[int, Form()]
    ) -> HTMLResponse:
        if not 1 <= score <= 5:  # noqa: PLR2004
            return message(request, "请选择满意度", "从“很不满意”到“很满意”选一项。")
        backend.rate(code, score)
        return message(request, "感谢您的评价", "您的评价已记录。")

    _booking_routes(app, backend, page, message)
    return app


def _booking_routes(
    app: FastAPI,
    backend: Backend,
    page: Callable[..., HTMLResponse],
    message: Callable[[Request, str, str], HTMLResponse],
) -> None:
    """办事预约: slots and bookings, which need central."""

    @app.get("/book", response_class=HTMLResponse)
    def book_form(request: Request, service: str = "") -> HTMLResponse:
        guides = backend.content.get("items", {}).get("guide", [])
        slots: list[dict[str, Any]] = []
        offline = False
        if service:
            try:
                slots = backend.slots(service)
            except (OSError, CentralRefusedError):
                offline = True
        return page(
            request,
            "book.html",
            guides=guides,
            service=service,
            slots=slots,
            offline=offline,
        )

    @app.post("/book", response_class=HTMLResponse)
    def book(
        request: Request,
        slot_id: Annotated[int, Form()],
        name: Annotated[str, Form()],
        phone: Annotated[str, Form()],
    ) -> HTMLResponse:
        try:
            done = backend.book(slot_id, name, phone)
        except CentralRefusedError as exc:
            return message(
                request,
                "预约未成功",
                "该时段可能已约满，请换一个时段。"
                if exc.status == HTTPStatus.CONFLICT
                else "请检查姓名和电话。",
            )
        except OSError:
            return message(request, "网络暂时不通", "预约需要联网，请稍后再试。")
        when = done["starts_at"][:16].replace("T", " ")
        text = f"{done['centre']} · {done['service']} · {when}，预约码 {done['code']}"
        return message(request, "预约成功", text)
