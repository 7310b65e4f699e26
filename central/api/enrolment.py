"""Enrolment over HTTP: technicians ask for codes; nodes enrol with them.

The code is the node's only credential, so the two node-facing routes need
no login. Guessing codes is throttled per client address like logins
(:data:`GUESS_POLICY`: HTTP 429 while locked); a successful enrolment is
audited, refused ones only once per lockout (``enrolment.locked``), so no
anonymous caller grows the audit chain faster than the back-off allows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from central.api.deps import (
    ServicesDep,
    SessionDep,
    check_scope,
    fleet_ca,
    permit,
    public,
    refusal,
)
from central.fleet import enrolment, twin
from central.fleet.policy import desired_config
from central.fleet.registry import get as get_device
from central.operators import sessions, throttle
from central.operators.auth import Principal
from edge.protocol.signing import public_key_text
from provisioning.ca import CAError
from provisioning.codes import CodeError, qr_svg

router = APIRouter(prefix="/api/v1/enrolment", tags=["enrolment"])

_STATUS = {
    "unknown": 404,
    "used": 409,
    "taken": 409,
    "expired": 410,
    "malformed": 400,
    "clock": 400,
}


class CodeIn(BaseModel):
    """A request for an enrolment code."""

    kind: str = Field(max_length=32)
    site: str = Field(default="", max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    ttl_h: Annotated[float, Field(gt=0, le=168)] = 24.0


class EnrolIn(BaseModel):
    """A node's enrolment: its CSR and what its clock says."""

    csr: str = Field(max_length=16 * 1024)
    client_time: datetime


def _refuse(exc: CodeError | CAError) -> HTTPException:
    reason = getattr(exc, "reason", "csr")
    return HTTPException(
        _STATUS.get(reason, 400), {"reason": reason, "message": str(exc)}
    )


@router.post("/codes", status_code=status.HTTP_201_CREATED)
def new_code(
    body: CodeIn,
    services: ServicesDep,
    session: SessionDep,
    who: Annotated[Principal, Depends(permit("enrolment", "create"))],
) -> dict[str, Any]:
    """A one-time code for a kind and site (shown once; QR it for a phone)."""
    check_scope(services, who, site=body.site, obj="enrolment", act="create")
    now = services.clock.now()
    code, row = enrolment.create_code(
        session,
        kind=body.kind,
        site=body.site,
        created_by=who.username,
        now=now,
        ttl=timedelta(hours=body.ttl_h),
        device_id=body.device_id,
    )
    services.audit.append(
        actor=who.username,
        action="enrolment.code",
        target=row.device_id,
        detail={"kind": row.kind, "site": row.site},
        now=now,
    )
    return {
        "code": code,
        "device_id": row.device_id,
        "kind": row.kind,
        "site": row.site,
        "expires_at": row.expires_at.isoformat(),
        "qr_svg": qr_svg(code),
    }


# Bad codes (or CSRs) one address may send before it waits; a site's nodes
# behind one NAT enrol with good codes, which give their attempt back.
GUESS_POLICY = throttle.ThrottlePolicy(free=20)


def _reserve(
    request: Request, services: ServicesDep, session: SessionDep
) -> tuple[str, list[tuple[str, throttle.Attempts]]]:
    """Count this attempt against the caller's address first; 429 while locked."""
    key = f"enrol:{request.client.host if request.client else 'unknown'}"
    wait, locked = sessions.reserve_attempt(
        session, [(key, GUESS_POLICY)], now=services.clock.now()
    )
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            {
                "reason": "throttled",
                "message": f"too many bad codes from this address; expected a "
                f"retry after {wait} s, got one sooner",
            },
            headers={"Retry-After": str(wait)},
        )
    return key, locked


def _audit_lockout(
    services: ServicesDep, key: str, locked: list[tuple[str, throttle.Attempts]]
) -> None:
    for _key, state in locked:
        services.audit.append(
            actor=f"anonymous@{key.partition(':')[2]}"[:64],
            action="enrolment.locked",
            target=key.partition(":")[2][:64],
            detail={"failures": state.failures},
            now=services.clock.now(),
        )


_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: refusal("Too many bad codes from this address; wait ``Retry-After``")
}
ByCode = Depends(
    public("a node enrols with its one-time code: the code is the credential")
)


@router.get("/{code}", dependencies=[ByCode], responses=_THROTTLED)
def preview(
    code: str, request: Request, services: ServicesDep, session: SessionDep
) -> dict[str, Any]:
    """Who a code will enrol, without using it up."""
    key, locked = _reserve(request, services, session)
    try:
        row = enrolment.look_up(session, code, now=services.clock.now())
    except CodeError as exc:
        _audit_lockout(services, key, locked)
        raise _refuse(exc) from exc
    sessions.refund(session, key)
    return {"device_id": row.device_id, "kind": row.kind, "site": row.site}


@router.post("/{code}", dependencies=[ByCode], responses=_THROTTLED)
def enrol(
    code: str,
    body: EnrolIn,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Use the code: certificate chain, CA bundle, broker, command key, config."""
    ca = fleet_ca(services)
    now = services.clock.now()
    key, locked = _reserve(request, services, session)
    try:
        done = enrolment.enrol(
            session,
            ca,
            code=code,
            csr_pem=body.csr.encode(),
            client_time=body.client_time,
            now=now,
        )
    except (CodeError, CAError) as exc:
        _audit_lockout(services, key, locked)
        raise _refuse(exc) from exc
    sessions.refund(session, key)
    services.audit.append(
        actor="node",
        action="enrolment.done",
        target=done.device_id,
        detail={"serial": format(done.issued.serial, "x")},
        now=now,
    )
    if services.link is not None:
        twin.reconcile(session, services.link, only=[done.device_id])
    desired = desired_config(
        twin.current_layers(session), twin.facts(get_device(session, done.device_id))
    )
    signer = services.link.signer if services.link is not None else None
    settings = services.settings
    anchors = (
        None if services.ota is None else services.ota.trust_anchors(done.device_id)
    )
    return {
        "device_id": done.device_id,
        "kind": done.kind,
        "site": done.site,
        "certificate": done.issued.chain_pem.decode(),
        "ca": ca.bundle_pem.decode(),
        "broker": {
            "host": settings.broker_public_host,
            "port": settings.broker_tls_port,
        },
        "command_keys": [public_key_text(signer.public_key())] if signer else [],
        "config": {"version": desired.version, "values": desired.values},
        # OTA: the roots the node pins for the image and its director repository
        "ota": None
        if anchors is None
        else {"image_root": anchors[0].decode(), "director_root": anchors[1].decode()},
        # where the node fetches updates with its fleet certificate (None: the
        # plain /ota of the HTTP app this enrolment came through, a dev setting)
        "ota_url": f"https://{settings.broker_public_host}:{settings.ota_tls_port}/ota"
        if settings.ota_tls_port
        else None,
    }
