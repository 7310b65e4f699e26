"""Signed commands: Ed25519 over the command, a nonce and an expiry.

A signed command's body is ``{"args": {...}, "auth": {"kid", "nonce", "exp",
"sig"}}``. The signature covers the target device, the command name, the
arguments, the key id, the nonce and the expiry, so a signature cannot be
moved to another node, another command or a later time. Verification names
why it refused (``unsigned``, ``malformed``, ``unknown_key``,
``bad_signature``, ``expired``, ``replay``). Remembering nonces is the
caller's (a :class:`NonceLedger` on the node); this module does no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.protocol.errors import PayloadError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class CommandAuthError(PayloadError):
    """A command refused for its signature; ``reason`` says which rule."""


class NonceLedger(Protocol):
    """Remembers nonces until they expire."""

    def seen(self, nonce: str, *, expires: datetime) -> bool:
        """Record ``nonce``; return True when it was already recorded."""
        ...


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable id for a public key (first 16 hex of its SHA-256)."""
    raw = public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    """A public key as base64 of its 32 raw bytes (for settings and commands)."""
    raw = public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Parse :func:`public_key_text` output.

    Raises:
        CommandAuthError: not 32 bytes of base64.
    """
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise CommandAuthError(
            f"expected a base64 Ed25519 public key, got {text[:60]!r}",
            reason="malformed",
        ) from exc


def _message(
    device: str, name: str, args: Mapping[str, Any], auth: Mapping[str, Any]
) -> bytes:
    doc = {
        "device": device,
        "command": name,
        "args": args,
        "kid": auth["kid"],
        "nonce": auth["nonce"],
        "exp": auth["exp"],
    }
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def sign_command(
    key: Ed25519PrivateKey,
    *,
    device: str,
    name: str,
    args: Mapping[str, Any],
    nonce: str,
    now: datetime,
    ttl: timedelta = timedelta(minutes=2),
) -> dict[str, Any]:
    """Return the signed body for ``name(args)`` to ``device``."""
    auth = {
        "kid": key_id(key.public_key()),
        "nonce": nonce,
        "exp": (now + ttl).astimezone(UTC).isoformat(),
    }
    auth["sig"] = key.sign(_message(device, name, args, auth)).hex()
    return {"args": dict(args), "auth": auth}


def verify_command(
    body: Mapping[str, Any],
    *,
    device: str,
    name: str,
    keys: Mapping[str, Ed25519PublicKey],
    now: datetime,
    ledger: NonceLedger,
) -> dict[str, Any]:
    """Check a signed command; return its arguments.

    Raises:
        CommandAuthError: with ``reason`` naming the rule it broke.
    """
    auth, args = body.get("auth"), body.get("args", {})
    if not isinstance(auth, dict):
        raise CommandAuthError(
            "expected a signed command, got no 'auth'", reason="unsigned"
        )
    try:
        kid, nonce, sig = (
            str(auth["kid"]),
            str(auth["nonce"]),
            bytes.fromhex(auth["sig"]),
        )
        exp = datetime.fromisoformat(str(auth["exp"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CommandAuthError(
            f"expected kid, nonce, exp and sig, got {auth!r:.120}", reason="malformed"
        ) from exc
    if not isinstance(args, dict) or exp.tzinfo is None:
        raise CommandAuthError(
            "expected args as an object and an aware exp", reason="malformed"
        )
    key = keys.get(kid)
    if key is None:
        raise CommandAuthError(
            f"expected a key of {sorted(keys)}, got {kid!r}", reason="unknown_key"
        )
    try:
        key.verify(sig, _message(device, name, args, auth))
    except InvalidSignature as exc:
        raise CommandAuthError(
            "expected central's signature, got a bad one", reason="bad_signature"
        ) from exc
    if exp <= now:
        raise CommandAuthError(
            f"expected a command valid after {now.isoformat()}, "
            f"it expired at {exp.isoformat()}",
            reason="expired",
        )
    if ledger.seen(nonce, expires=exp):
        raise CommandAuthError(
            f"expected a fresh nonce, got {nonce!r} again", reason="replay"
        )
    return args
