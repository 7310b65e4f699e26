"""Open311 GeoReport v2: services, service definitions, requests, tokens.

JSON or XML by the path's extension (``services.json``, ``services.xml``),
errors in the spec's shape (a list of ``{code, description}``, or
``<errors><error>…``) with its status codes. Requests are 12345 complaints;
``status`` is ``open`` until one is closed (or refused). Posting needs an
API key from ``CENTRAL_OPEN311_API_KEYS``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from sqlmodel import col, select

from central.api.deps import ServicesDep, SessionDep, complaints
from central.complaints import workflow
from central.complaints.models import Complaint, Department, ServiceType
from central.complaints.service import Filing
from central.errors import ConflictError, NotFoundError
from central.models import as_utc

# Every answer, errors too, is JSON or XML by the path's extension.
_EITHER: dict[str, Any] = {"content": {"application/json": {}, "text/xml": {}}}
router = APIRouter(
    prefix="/open311/v2",
    tags=["open311"],
    responses={
        200: {"description": "JSON or XML by the extension", **_EITHER},
        400: {"description": "A required field is missing or wrong", **_EITHER},
        403: {"description": "The api_key is not valid", **_EITHER},
        404: {"description": "No such service, request or token", **_EITHER},
    },
)
Fmt = Literal["json", "xml"]
ITEM = {"services": "service", "service_requests": "request", "errors": "error"}


def _xml(root: str, items: Any) -> bytes:  # noqa: ANN401 - list or dict
    def fill(parent: ET.Element, value: Any) -> None:  # noqa: ANN401
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, list):
                    holder = ET.SubElement(parent, k)
                    for x in v:
                        fill(ET.SubElement(holder, k.removesuffix("s")), x)
                else:
                    fill(ET.SubElement(parent, k), v)
        elif value is not None:
            parent.text = str(value).lower() if isinstance(value, bool) else str(value)

    top = ET.Element(root)
    if isinstance(items, list):
        for item in items:
            fill(ET.SubElement(top, ITEM.get(root, "item")), item)
    else:
        fill(top, items)
    body: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return body


def _reply(data: Any, fmt: str, root: str, code: int = 200) -> Response:  # noqa: ANN401
    if fmt == "xml":
        return Response(
            _xml(root, data), status_code=code, media_type="text/xml; charset=utf-8"
        )
    return JSONResponse(data, status_code=code)


def _error(fmt: str, code: int, description: str) -> Response:
    return _reply([{"code": code, "description": description}], fmt, "errors", code)


def _service(s: ServiceType) -> dict[str, Any]:
    return {
        "service_code": s.code,
        "service_name": s.name,
        "description": s.description,
        "metadata": False,
        "type": "realtime",
        "keywords": "",
        "group": s.group,
    }


def _request(
    c: Complaint, names: dict[str, str], depts: dict[str, str]
) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else as_utc(value).isoformat()

    return {
        "service_request_id": str(c.id),
        "status": workflow.open311_status(c.state),
        "status_notes": c.reply or workflow.LABELS.get(c.state, c.state),
        "service_name": names.get(c.service_code, c.service_code),
        "service_code": c.service_code,
        "description": c.description,
        "agency_responsible": depts.get(c.department, ""),
        "service_notice": "",
        "requested_datetime": iso(c.received_at),
        "updated_datetime": iso(c.updated_at),
        "expected_datetime": iso(c.due_at),
        "address": c.place,
        "address_id": "",
        "zipcode": "",
        "lat": c.lat,
        "long": c.lon,
        "media_url": "",
    }


def _lookups(session: SessionDep) -> tuple[dict[str, str], dict[str, str]]:
    names = {s.code: s.name for s in session.exec(select(ServiceType)).all()}
    depts = {d.code: d.name for d in session.exec(select(Department)).all()}
    return names, depts


@router.get("/services.{fmt}")
def services(fmt: Fmt, session: SessionDep) -> Response:
    """The request types."""
    rows = session.exec(select(ServiceType).order_by(col(ServiceType.code))).all()
    return _reply([_service(s) for s in rows], fmt, "services")


@router.get("/services/{code}.{fmt}")
def service_definition(code: str, fmt: Fmt, session: SessionDep) -> Response:
    """A request type's definition (no extra attributes are asked)."""
    if session.get(ServiceType, code) is None:
        return _error(fmt, status.HTTP_404_NOT_FOUND, f"service_code {code} not found")
    return _reply({"service_code": code, "attributes": []}, fmt, "service_definition")


@router.post("/requests.{fmt}")
async def post_request(
    fmt: Fmt, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """File a request (form-encoded, as the spec says)."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    keys = svc.settings.open311_api_keys
    if not keys or form.get("api_key") not in keys:
        return _error(fmt, status.HTTP_403_FORBIDDEN, "api_key missing or not valid")
    missing = [k for k in ("service_code", "description") if not form.get(k)]
    located = (form.get("lat") and form.get("long")) or form.get("address_string")
    if missing or not located:
        what = ", ".join(missing) or "lat & long or address_string"
        return _error(fmt, status.HTTP_400_BAD_REQUEST, f"{what} required")
    try:
        lat = float(form["lat"]) if form.get("lat") else None
        lon = float(form["long"]) if form.get("long") else None
    except ValueError:
        return _error(fmt, status.HTTP_400_BAD_REQUEST, "lat and long must be numbers")
    name = " ".join(
        x for x in (form.get("last_name", ""), form.get("first_name", "")) if x
    )
    try:
        c = complaints(svc).file(
            session,
            Filing(
                service_code=form["service_code"],
                description=form["description"][:2000],
                place=form.get("address_string", "")[:200],
                lat=lat,
                lon=lon,
                real_name=bool(name or form.get("phone") or form.get("email")),
                name=name[:64],
                phone=form.get("phone", "")[:32],
                email=form.get("email", "")[:128],
                source="open311",
                device=form.get("device_id", "")[:64],
            ),
            at=svc.clock.now(),
        )
    except NotFoundError as exc:
        return _error(fmt, status.HTTP_400_BAD_REQUEST, str(exc))
    except ConflictError as exc:  # pragma: no cover - 40 random bits
        return _error(fmt, status.HTTP_409_CONFLICT, str(exc))
    session.commit()
    session.refresh(c)
    answer = [
        {
            "service_request_id": str(c.id),
            "token": c.token,
            "service_notice": f"查询码 {c.code}",
        }
    ]
    return _reply(answer, fmt, "service_requests", status.HTTP_201_CREATED)


@router.get("/requests.{fmt}")
def get_requests(
    fmt: Fmt,
    session: SessionDep,
    request: Request,
    service_request_id: str = "",
    service_code: str = "",
    start_date: datetime | None = None,
    end_date: datetime | None = None,
) -> Response:
    """Requests, newest first (at most 1,000; filters as in the spec)."""
    wanted_status = request.query_params.get("status", "")  # a name FastAPI reserves
    query = select(Complaint)
    if service_request_id:
        try:
            ids = [int(x) for x in service_request_id.split(",")]
        except ValueError:
            return _error(
                fmt, status.HTTP_400_BAD_REQUEST, "service_request_id must be numbers"
            )
        query = query.where(col(Complaint.id).in_(ids))
    if service_code:
        query = query.where(col(Complaint.service_code).in_(service_code.split(",")))
    if start_date is not None:
        query = query.where(Complaint.received_at >= start_date)
    if end_date is not None:
        query = query.where(Complaint.received_at <= end_date)
    rows = session.exec(query.order_by(col(Complaint.id).desc()).limit(1000)).all()
    names, depts = _lookups(session)
    out = [_request(c, names, depts) for c in rows]
    if wanted_status:
        allowed = set(wanted_status.split(","))
        out = [r for r in out if r["status"] in allowed]
    return _reply(out, fmt, "service_requests")


@router.get("/requests/{request_id}.{fmt}")
def get_request(request_id: str, fmt: Fmt, session: SessionDep) -> Response:
    """One request."""
    c = session.get(Complaint, int(request_id)) if request_id.isdigit() else None
    if c is None:
        return _error(
            fmt, status.HTTP_404_NOT_FOUND, f"service_request_id {request_id} not found"
        )
    names, depts = _lookups(session)
    return _reply([_request(c, names, depts)], fmt, "service_requests")


@router.get("/tokens/{token}.{fmt}")
def get_token(token: str, fmt: Fmt, session: SessionDep) -> Response:
    """The request id a token became."""
    c = session.exec(select(Complaint).where(Complaint.token == token)).first()
    if c is None:
        return _error(fmt, status.HTTP_404_NOT_FOUND, f"token {token} not found")
    return _reply(
        [{"service_request_id": str(c.id), "token": token}], fmt, "service_requests"
    )
