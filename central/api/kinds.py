"""Device kinds: the one registry (:mod:`edge.protocol.kinds`), read by the console.

The console fills its kind pickers (设备 filter, 设备入网) from here, so a
kind added to the registry shows everywhere without a second list. Each
kind comes with its Chinese label and its configuration schema (JSON
Schema, as central validates policy layers against it). Nothing is stored
or changed here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from central.api.deps import permit
from central.operators.auth import Principal
from edge.protocol.kinds import REGISTRY

router = APIRouter(prefix="/api/v1/kinds", tags=["devices"])

ANY_KIND = tuple(f"devices/{code}" for code in REGISTRY)
Reader = Annotated[
    Principal, Depends(permit("devices/{kind}", "read", any_of=ANY_KIND))
]


@router.get("")
def list_kinds(_who: Reader) -> dict[str, Any]:
    """Every device kind: code, Chinese label and configuration schema."""
    return {
        "kinds": [
            {
                "code": spec.code,
                "label": spec.label,
                "config_schema": spec.config.model_json_schema(),
            }
            for spec in REGISTRY.values()
        ]
    }
