"""The audit log, read-only, for administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from central.api.deps import MAX_ROW, ServicesDep, check_scope, permit
from central.models import as_utc
from central.operators.auth import Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    services: ServicesDep,
    _admin: Annotated[Principal, Depends(permit("audit", "read"))],
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Records newest first; page with ``before`` = the last ``seq`` seen."""
    _county(services, _admin)
    rows = services.audit.search(
        actor=actor, action=action, target=target, limit=limit, before=before
    )
    return [
        {
            "seq": r.seq,
            "ts": as_utc(r.ts).isoformat(),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "detail": r.detail,
            "hash": r.hash,
        }
        for r in rows
    ]


@router.get("/verify")
def verify_audit(
    services: ServicesDep,
    _admin: Annotated[Principal, Depends(permit("audit", "read"))],
) -> dict[str, Any]:
    """Walk the chain and its signed checkpoints."""
    _county(services, _admin)
    finding = services.audit.verify()
    if finding is None:
        return {"ok": True}
    return {"ok": False, "seq": finding.seq, "problem": finding.problem}


def _county(services: ServicesDep, who: Principal) -> None:
    """The audit log spans every district: readable from scope ``*`` only."""
    check_scope(services, who, site="*", obj="audit", act="read")
