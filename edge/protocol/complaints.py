"""Complaints on the wire: what a kiosk sends, and the follow-up code.

``complaint`` carries a citizen's complaint under the follow-up code (查询码)
the kiosk printed; ``rating`` the citizen's satisfaction with the answer.
Both leave through the kiosk's outbox, so a kiosk that was offline delivers
them later, and central files each once, by its code.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: read aloud, typed
CODE_PATTERN = r"^[2-9A-HJ-NP-Z]{8}$"


def new_code(length: int = 8) -> str:
    """A follow-up code: 40 random bits in unambiguous characters."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


class ComplaintBody(BaseModel):
    """A complaint as a kiosk sends it (event ``complaint``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, max_length=8)
    service_code: str = Field(min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=2000)
    place: str = Field(default="", max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    real_name: bool = False
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=32)
    submitted_at: datetime


class RatingBody(BaseModel):
    """A citizen's satisfaction with the answer (event ``rating``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, max_length=8)
    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)
    at: datetime
