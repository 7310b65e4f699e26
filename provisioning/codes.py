"""One-time enrolment codes: short, typable, expiring, single use (pure).

A code is eight characters from an alphabet without look-alikes (no 0/O,
1/I/L), shown as ``K7QP-M2XD``. Only its SHA-256 is stored, so a database
copy does not hand out enrolments. What a technician types is normalised
(case, spaces, dashes) before it is hashed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioning.errors import ProvisioningError

if TYPE_CHECKING:
    from datetime import datetime

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8


class CodeError(ProvisioningError, ValueError):
    """A code that cannot be used; the message tells the technician what to do."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def new_code() -> str:
    """A fresh code such as ``K7QP-M2XD`` (about 40 bits of randomness)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise(typed: str) -> str:
    """What the technician typed → the canonical code (raises on bad characters)."""
    raw = "".join(typed.split()).replace("-", "").upper()
    if len(raw) != LENGTH or any(c not in ALPHABET for c in raw):
        raise CodeError(
            f"expected a code like K7QP-M2XD ({LENGTH} characters of {ALPHABET}), "
            f"got {typed!r:.40}; check what you typed",
            reason="malformed",
        )
    return f"{raw[:4]}-{raw[4:]}"


def qr_svg(code: str) -> str:
    """The code as an SVG QR code, for a phone or the node's camera."""
    import io  # noqa: PLC0415

    import segno  # noqa: PLC0415 - central-side only; nodes never draw codes

    out = io.BytesIO()
    segno.make(normalise(code), error="m").save(
        out, kind="svg", scale=4, border=2, omitsize=True
    )
    return out.getvalue().decode()


def code_hash(code: str) -> str:
    """The stored form of a code."""
    return hashlib.sha256(normalise(code).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CodeState:
    """What central knows about a code."""

    expires_at: datetime
    used_at: datetime | None


def check_usable(state: CodeState | None, *, now: datetime) -> None:
    """Refuse an unknown, used or expired code with advice.

    Raises:
        CodeError: ``reason`` is ``unknown``, ``used`` or ``expired``.
    """
    if state is None:
        raise CodeError(
            "this code is not known; check it, or ask for a new one", reason="unknown"
        )
    if state.used_at is not None:
        raise CodeError(
            f"this code was already used at {state.used_at.isoformat()}; "
            "ask the centre for a new code",
            reason="used",
        )
    if now >= state.expires_at:
        raise CodeError(
            f"this code expired at {state.expires_at.isoformat()}; "
            "ask the centre for a new code",
            reason="expired",
        )
