"""Open311 GeoReport v2: discovery, services, requests, tokens, photos.

JSON or XML by the path's extension (``services.json``, ``services.xml``).
Every refusal is the spec's error list (``[{"code": 400, "description": …}]``
or ``<errors><error>…``) in the URL's format with its status (400, 403,
404, 413), never FastAPI's 422: parameters are read and checked here by
:mod:`central.complaints.georeport`, which also decides what is public.
Requests are 12345 complaints; ``status`` is ``open`` until one is closed
(or refused). Posting needs an API key from ``CENTRAL_OPEN311_API_KEYS``;
a photo sent as multipart ``media`` is kept under
``data_dir/open311/media`` and served back here as the ``media_url``.
The complaint loop itself is :mod:`central.complaints.service`'s.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlmodel import col, select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from central.api.deps import ServicesDep, SessionDep, complaints
from central.complaints import georeport, workflow
from central.complaints.georeport import GeoReportError
from central.complaints.models import Complaint, Department, ServiceType
from central.complaints.service import Filing
from central.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.types import Message

    from central.settings import CentralSettings

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# Every answer, errors too, is JSON or XML by the path's extension.
_EITHER: dict[str, Any] = {"content": {"application/json": {}, "text/xml": {}}}
router = APIRouter(
    prefix="/open311/v2",
    tags=["open311"],
    responses={
        200: {"description": "JSON or XML by the extension", **_EITHER},
        400: {"description": "A field is missing or wrong", **_EITHER},
        403: {"description": "The api_key is not valid", **_EITHER},
        404: {"description": "No such service, request, token or jurisdiction"}
        | _EITHER,
    },
)
# A form with a photo: the photo and the fields around it.
MAX_BODY = georeport.MAX_MEDIA + 256 * 1024
_MEDIA_NAME = re.compile(r"[0-9a-f]{32}\.(jpg|png|gif|webp)")
CONTACT = "岳阳县12345政务服务便民热线 电话 12345"
KEY_SERVICE = "接入 Open311 提交诉求的 api_key 请向县12345热线办公室申请"


def _reply(data: Any, fmt: str, root: str, code: int = 200) -> Response:  # noqa: ANN401
    if fmt == "xml":
        return Response(
            georeport.to_xml(root, data),
            status_code=code,
            media_type="text/xml; charset=utf-8",
        )
    return JSONResponse(data, status_code=code)


def _error(fmt: str, exc: GeoReportError) -> Response:
    """The spec's error list; JSON unless the URL asked for XML."""
    kind = "xml" if fmt == "xml" else "json"
    return _reply(
        [{"code": exc.code, "description": exc.description}], kind, "errors", exc.code
    )


def _jurisdiction(given: str | None, settings: CentralSettings) -> None:
    """Refuse another jurisdiction's id; none at all means the county's."""
    ours = settings.open311_jurisdiction_id
    if given and given.strip() != ours:
        raise GeoReportError(
            status.HTTP_404_NOT_FOUND,
            f"jurisdiction_id: expected {ours}, got {given[:64]!r}",
        )


def _found(row: _T | None, description: str) -> _T:
    """``row``, or the spec's 404 saying what was not found."""
    if row is None:
        raise GeoReportError(status.HTTP_404_NOT_FOUND, description)
    return row


def _lookups(
    session: SessionDep,
) -> tuple[dict[str, ServiceType], dict[str, str]]:
    types = {s.code: s for s in session.exec(select(ServiceType)).all()}
    depts = {d.code: d.name for d in session.exec(select(Department)).all()}
    return types, depts


def _public(
    c: Complaint, types: Mapping[str, ServiceType], depts: Mapping[str, str]
) -> dict[str, Any]:
    kind = types.get(c.service_code)
    # Until the desk passes it on, the request type's department answers for it.
    department = c.department or (kind.department if kind else "")
    return georeport.public_request(
        c,
        service_name=kind.name if kind else c.service_code,
        agency=depts.get(department, ""),
    )


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


@router.get("/discovery.{fmt}")
def discovery(fmt: str, request: Request) -> Response:
    """Service Discovery: this endpoint, its formats and changeset."""
    try:
        fmt = georeport.parse_format(fmt)
    except GeoReportError as exc:
        return _error(fmt, exc)
    url = str(request.base_url).rstrip("/") + router.prefix
    doc = georeport.discovery(url=url, contact=CONTACT, key_service=KEY_SERVICE)
    return _reply(doc, fmt, "discovery")


@router.get("/services.{fmt}")
def services(
    fmt: str, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """The request types."""
    try:
        fmt = georeport.parse_format(fmt)
        _jurisdiction(request.query_params.get("jurisdiction_id"), svc.settings)
    except GeoReportError as exc:
        return _error(fmt, exc)
    rows = session.exec(select(ServiceType).order_by(col(ServiceType.code))).all()
    return _reply([_service(s) for s in rows], fmt, "services")


@router.get("/services/{code}.{fmt}")
def service_definition(
    code: str, fmt: str, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """A request type's definition (no extra attributes are asked)."""
    try:
        fmt = georeport.parse_format(fmt)
        _jurisdiction(request.query_params.get("jurisdiction_id"), svc.settings)
        found = session.get(ServiceType, code) if len(code) <= 32 else None  # noqa: PLR2004 - the column's length
        _found(found, f"service_code {code[:32]!r} not found")
    except GeoReportError as exc:
        return _error(fmt, exc)
    return _reply({"service_code": code, "attributes": []}, fmt, "service_definition")


async def _read_form(request: Request) -> tuple[dict[str, str], bytes | None]:
    """The posted fields (first of each name) and the ``media`` photo, bounded.

    Raises:
        GeoReportError: 413 for a body over :data:`MAX_BODY`, 400 for a form
            that cannot be read.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise GeoReportError(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"request: expected at most {MAX_BODY} bytes, got more",
            )
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:  # pragma: no cover - the parser reads the body once
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=200)
    except HTTPException as exc:
        raise GeoReportError(
            status.HTTP_400_BAD_REQUEST,
            f"request: expected a form (urlencoded or multipart), got {exc.detail}",
        ) from exc
    fields: dict[str, str] = {}
    media: bytes | None = None
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key == "media":
                    media = await value.read()
            else:
                fields.setdefault(key, value)  # media_url repeated: the first
    finally:
        await form.close()
    return fields, media


def _check_key(form: Mapping[str, str], keys: list[str]) -> None:
    given = form.get("api_key", "")
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise GeoReportError(
            status.HTTP_403_FORBIDDEN,
            "api_key: expected a valid key, got none or another",
        )


def _filing(form: Mapping[str, str]) -> Filing:
    """The complaint a posted form describes (the spec's fields).

    Raises:
        GeoReportError: 400 naming the field that is missing or wrong.
    """
    service_code = form.get("service_code", "").strip()
    if not service_code:
        raise GeoReportError(
            status.HTTP_400_BAD_REQUEST,
            "service_code: expected a request type from services.json, got nothing",
        )
    lat = georeport.parse_coordinate(form.get("lat", ""), field="lat")
    lon = georeport.parse_coordinate(form.get("long", ""), field="long")
    if (lat is None) != (lon is None):
        raise GeoReportError(
            status.HTTP_400_BAD_REQUEST,
            "lat & long: expected both or neither, got only one",
        )
    address = georeport.parse_text(form, "address_string")
    address_id = georeport.parse_text(form, "address_id")
    if lat is None and not address and not address_id:
        raise GeoReportError(
            status.HTTP_400_BAD_REQUEST,
            "location: expected lat & long, address_string or address_id, got none",
        )
    media_url = georeport.parse_text(form, "media_url")
    if media_url and not media_url.startswith(("http://", "https://")):
        raise GeoReportError(
            status.HTTP_400_BAD_REQUEST,
            f"media_url: expected an http(s) URL, got {media_url[:40]!r}",
        )
    name = "".join(
        x for x in (georeport.parse_text(form, k) for k in ("last_name", "first_name"))
    )
    phone = georeport.parse_text(form, "phone")
    email = georeport.parse_text(form, "email")
    return Filing(
        service_code=service_code[:32],
        description=georeport.parse_text(form, "description"),
        place=address,
        address_id=address_id,
        media_url=media_url,
        lat=lat,
        lon=lon,
        real_name=bool(name or phone or email),
        name=name[:64],
        phone=phone,
        email=email,
        source="open311",
        device=georeport.parse_text(form, "device_id"),
        public=True,
    )


@router.post(
    "/requests.{fmt}",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "The new request's id and token", **_EITHER},
        413: {"description": "The request (with its photo) is too large", **_EITHER},
    },
)
async def post_request(
    fmt: str, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """File a request (form-encoded or multipart with a ``media`` photo)."""
    try:
        fmt = georeport.parse_format(fmt)
        form, media = await _read_form(request)
        _check_key(form, svc.settings.open311_api_keys)
        _jurisdiction(form.get("jurisdiction_id"), svc.settings)
        filing = _filing(form)
        ext = georeport.sniff_image(media) if media is not None else ""
        photo = f"{secrets.token_hex(16)}.{ext}" if ext else ""
        if photo:
            url = str(request.url_for("open311_media", name=photo))
            filing = replace(filing, media_url=url)
        try:
            c = complaints(svc).file(session, filing, at=svc.clock.now())
        except NotFoundError as exc:
            raise GeoReportError(
                status.HTTP_400_BAD_REQUEST,
                f"service_code: expected a request type from services.json, "
                f"got {filing.service_code!r}",
            ) from exc
    except GeoReportError as exc:
        return _error(fmt, exc)
    except ConflictError as exc:  # pragma: no cover - 40 random bits
        return _error(fmt, GeoReportError(status.HTTP_409_CONFLICT, str(exc)))
    if photo and media is not None:
        directory = svc.settings.data_dir / "open311" / "media"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / photo).write_bytes(media)
    session.commit()
    session.refresh(c)
    logger.info("Open311 request %s filed (%s)", c.id, c.service_code)
    answer = [
        {
            "service_request_id": str(c.id),
            "token": c.token,
            "service_notice": f"查询码 {c.code}",
            "account_id": None,
        }
    ]
    return _reply(answer, fmt, "service_requests", status.HTTP_201_CREATED)


@router.get("/requests.{fmt}")
def get_requests(
    fmt: str, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """Public requests, newest first (at most 1,000; the spec's filters).

    ``service_request_id`` overrides the other filters; otherwise
    ``start_date``/``end_date`` (offsets honoured; none means county time)
    span at most 90 days and default to the last 90.
    """
    params = request.query_params
    query = select(Complaint).where(col(Complaint.public))
    try:
        fmt = georeport.parse_format(fmt)
        _jurisdiction(params.get("jurisdiction_id"), svc.settings)
        if ids := params.get("service_request_id", ""):
            query = query.where(col(Complaint.id).in_(georeport.parse_ids(ids)))
        else:
            if codes := params.get("service_code", ""):
                query = query.where(
                    col(Complaint.service_code).in_(georeport.parse_codes(codes))
                )
            wanted = georeport.parse_statuses(params.get("status", ""))
            closed = col(Complaint.state).in_(workflow.OPEN311_CLOSED)
            if wanted == {"closed"}:
                query = query.where(closed)
            elif wanted == {"open"}:
                query = query.where(~closed)
            start, end = georeport.date_window(
                *(
                    georeport.parse_datetime(params[k], field=k)
                    if params.get(k, "").strip()
                    else None
                    for k in ("start_date", "end_date")
                ),
                now=svc.clock.now(),
            )
            query = query.where(
                col(Complaint.received_at) >= start, col(Complaint.received_at) <= end
            )
    except GeoReportError as exc:
        return _error(fmt, exc)
    rows = session.exec(
        query.order_by(col(Complaint.id).desc()).limit(georeport.MAX_ROWS)
    ).all()
    names, depts = _lookups(session)
    return _reply([_public(c, names, depts) for c in rows], fmt, "service_requests")


@router.get("/requests/{request_id}.{fmt}")
def get_request(
    request_id: str, fmt: str, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """One public request; any other id is not found, whatever it holds."""
    try:
        fmt = georeport.parse_format(fmt)
        _jurisdiction(request.query_params.get("jurisdiction_id"), svc.settings)
        number = georeport.parse_id(request_id)
        row = session.get(Complaint, number) if number is not None else None
        c = _found(
            row if row is not None and row.public else None,
            f"service_request_id {request_id[:20]!r} not found",
        )
    except GeoReportError as exc:
        return _error(fmt, exc)
    names, depts = _lookups(session)
    return _reply([_public(c, names, depts)], fmt, "service_requests")


@router.get("/tokens/{token}.{fmt}")
def get_token(
    token: str, fmt: str, request: Request, session: SessionDep, svc: ServicesDep
) -> Response:
    """The request id a token became."""
    try:
        fmt = georeport.parse_format(fmt)
        _jurisdiction(request.query_params.get("jurisdiction_id"), svc.settings)
        c = _found(
            session.exec(
                select(Complaint).where(Complaint.token == token, col(Complaint.public))
            ).first()
            if len(token) <= 40  # noqa: PLR2004 - the column's length
            else None,
            f"token {token[:40]!r} not found",
        )
    except GeoReportError as exc:
        return _error(fmt, exc)
    return _reply(
        [{"service_request_id": str(c.id), "token": token}], fmt, "service_requests"
    )


@router.get(
    "/media/{name}",
    name="open311_media",
    responses={
        200: {
            "description": "The photo",
            "content": {t: {} for t in georeport.MEDIA_TYPES.values()},
        }
    },
)
def media(name: str, svc: ServicesDep) -> Response:
    """A photo uploaded with a request."""
    path = svc.settings.data_dir / "open311" / "media" / name
    if not _MEDIA_NAME.fullmatch(name) or not path.is_file():
        return _error(
            "json",
            GeoReportError(status.HTTP_404_NOT_FOUND, f"media {name[:40]!r} not found"),
        )
    return FileResponse(
        path,
        media_type=georeport.MEDIA_TYPES[name.rsplit(".", 1)[1]],
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
def not_an_endpoint(rest: str) -> Response:
    """Anything else under the prefix: the spec's 404, not FastAPI's."""
    fmt = "xml" if rest.endswith(".xml") else "json"
    return _error(
        fmt,
        GeoReportError(status.HTTP_404_NOT_FOUND, f"no Open311 endpoint {rest[:80]!r}"),
    )
