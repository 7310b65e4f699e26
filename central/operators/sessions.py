"""Operator sessions: refresh-token families, revocation, stream tickets, throttle.

A login opens a session (one row) with a refresh token; each refresh uses
the token up and issues the next one, and a used token presented again
after :data:`REUSE_GRACE` revokes the whole session (someone kept a copy).
Every request checks its access token's session and the operator's epoch
here with one primary-key join (:func:`check_principal`), so a disabled,
re-roled or logged-out operator is refused on the next request in every
process: the database is the truth, nothing is cached. Event streams open
with a single-use ticket of :data:`TICKET_TTL`. The login throttle's
counters are stored here; the rule itself is :mod:`central.operators.throttle`.

Only SHA-256 digests of refresh tokens and tickets are stored. HTTP
(cookies, status codes) is left to :mod:`central.api.auth`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from central.errors import AuthError
from central.models import (
    LoginThrottle,
    Operator,
    OperatorSession,
    RefreshToken,
    StreamTicket,
    as_utc,
)
from central.operators import throttle
from central.operators.auth import Principal

if TYPE_CHECKING:
    from collections.abc import Sequence

TICKET_TTL = timedelta(seconds=30)
# Two tabs of one browser share the refresh cookie and may refresh at the
# same moment; the loser gets an access token without a new refresh token
# instead of ending the session.
REUSE_GRACE = timedelta(seconds=5)
KEEP_EXPIRED = timedelta(days=1)


class RefreshReuseError(AuthError):
    """A used refresh token came back: the session is revoked."""


@dataclass(frozen=True, slots=True)
class Refreshed:
    """A refresh's outcome: who, and the next refresh token (None in the grace)."""

    principal: Principal
    refresh_token: str | None


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal(op: Operator, session_id: str) -> Principal:
    return Principal(
        username=op.username,
        role=op.role,
        scope=tuple(op.scope),
        session_id=session_id,
        epoch=op.session_epoch,
    )


def _prune(session: Session, now: datetime) -> None:
    """Forget sessions (and their tokens) expired more than a day ago."""
    old = select(OperatorSession.id).where(
        col(OperatorSession.expires_at) < now - KEEP_EXPIRED
    )
    session.exec(delete(RefreshToken).where(col(RefreshToken.session_id).in_(old)))
    session.exec(delete(StreamTicket).where(col(StreamTicket.session_id).in_(old)))
    session.exec(delete(StreamTicket).where(col(StreamTicket.expires_at) < now))
    session.exec(
        delete(OperatorSession).where(
            col(OperatorSession.expires_at) < now - KEEP_EXPIRED
        )
    )


def open_session(
    session: Session, op: Operator, *, now: datetime, ttl: timedelta, address: str
) -> tuple[Principal, str]:
    """Start a session for ``op``; return its principal and first refresh token."""
    _prune(session, now)
    sid = secrets.token_hex(16)
    refresh = secrets.token_urlsafe(32)
    session.add(
        OperatorSession(
            id=sid,
            username=op.username,
            created_at=now,
            expires_at=now + ttl,
            address=address[:64],
        )
    )
    session.flush()
    session.add(RefreshToken(sha256=_sha(refresh), session_id=sid, issued_at=now))
    session.commit()
    return _principal(op, sid), refresh


def rotate_refresh(session: Session, token: str, *, now: datetime) -> Refreshed:
    """Use up a refresh token and issue the next one of its session.

    Raises:
        RefreshReuseError: the token was used before (beyond the grace): the
            session is revoked.
        AuthError: unknown token, or a session that is over or whose
            operator is disabled.
    """
    row = session.get(RefreshToken, _sha(token))
    if row is None:
        raise AuthError("expected a current refresh token, got an unknown one")
    sess = session.get(OperatorSession, row.session_id)
    op = session.get(Operator, sess.username) if sess is not None else None
    if sess is None or op is None:
        raise AuthError("expected a current refresh token, got an unknown one")
    if sess.revoked_at is not None:
        raise AuthError(f"expected an open session, got one ended ({sess.revoked_why})")
    if as_utc(sess.expires_at) <= now:
        raise AuthError("expected an open session, got an expired one")
    if not op.active:
        raise AuthError("expected an active operator, got a disabled one")
    if row.used_at is not None:
        if now - as_utc(row.used_at) <= REUSE_GRACE:
            return Refreshed(_principal(op, sess.id), None)
        revoke_session(session, sess.id, now=now, why="refresh-reuse")
        raise RefreshReuseError(
            "expected an unused refresh token, got one used before; "
            "the session is revoked"
        )
    # The conditional update makes "use once" hold across processes.
    claimed = session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.sha256) == row.sha256)
        .where(col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        session.rollback()
        return Refreshed(_principal(op, sess.id), None)
    nxt = secrets.token_urlsafe(32)
    session.add(RefreshToken(sha256=_sha(nxt), session_id=sess.id, issued_at=now))
    session.commit()
    return Refreshed(_principal(op, sess.id), nxt)


def revoke_session(
    session: Session, session_id: str, *, now: datetime, why: str
) -> None:
    """End one session (logout, or a reused refresh token)."""
    session.exec(
        update(OperatorSession)
        .where(col(OperatorSession.id) == session_id)
        .where(col(OperatorSession.revoked_at).is_(None))
        .values(revoked_at=now, revoked_why=why[:32])
    )
    session.commit()


def revoke_all(session: Session, username: str, *, now: datetime, why: str) -> int:
    """End every session of ``username`` and void its access tokens.

    The operator's epoch is raised in the same transaction as the caller's
    change (the caller commits), so no token issued before it passes again.

    Returns:
        The new epoch.
    """
    op = session.get(Operator, username)
    if op is None:
        raise AuthError(f"expected an operator, got unknown {username!r}")
    op.session_epoch += 1
    session.add(op)
    session.exec(
        update(OperatorSession)
        .where(col(OperatorSession.username) == username)
        .where(col(OperatorSession.revoked_at).is_(None))
        .values(revoked_at=now, revoked_why=why[:32])
    )
    return op.session_epoch


_CHECK = (
    sa.select(
        Operator.__table__.c.role,  # type: ignore[attr-defined]
        Operator.__table__.c.scope,  # type: ignore[attr-defined]
        Operator.__table__.c.active,  # type: ignore[attr-defined]
        Operator.__table__.c.session_epoch,  # type: ignore[attr-defined]
        OperatorSession.__table__.c.username,  # type: ignore[attr-defined]
        OperatorSession.__table__.c.revoked_at,  # type: ignore[attr-defined]
        OperatorSession.__table__.c.expires_at,  # type: ignore[attr-defined]
    )
    .select_from(
        OperatorSession.__table__.join(  # type: ignore[attr-defined]
            Operator.__table__,  # type: ignore[attr-defined]
            OperatorSession.__table__.c.username  # type: ignore[attr-defined]
            == Operator.__table__.c.username,  # type: ignore[attr-defined]
        )
    )
    .where(OperatorSession.__table__.c.id == sa.bindparam("sid"))  # type: ignore[attr-defined]
)


def check_principal(
    engine: sa.Engine, claimed: Principal, *, now: datetime
) -> Principal:
    """Whether a token's session and epoch still hold; the principal as stored now.

    One primary-key join on its own short connection, so a request's own
    session is not opened early.

    Raises:
        AuthError: the session is over or revoked, the operator is disabled,
            or the operator changed since the token was issued.
    """
    with engine.connect() as conn:
        row = conn.execute(_CHECK, {"sid": claimed.session_id}).first()
    if row is None or row.username != claimed.username:
        raise AuthError("expected a token of an open session, got an unknown session")
    if row.revoked_at is not None:
        raise AuthError("expected a token of an open session, got a revoked one")
    if as_utc(row.expires_at) <= now:
        raise AuthError("expected a token of an open session, got an expired one")
    if not row.active:
        raise AuthError("expected an active operator, got a disabled one")
    if row.session_epoch != claimed.epoch:
        raise AuthError(
            "expected a token issued since the operator's last change, got an "
            "older one; sign in again"
        )
    return Principal(
        username=claimed.username,
        role=row.role,
        scope=tuple(row.scope),
        session_id=claimed.session_id,
        epoch=row.session_epoch,
    )


def issue_ticket(session: Session, principal: Principal, *, now: datetime) -> str:
    """A single-use ticket that opens one event stream within :data:`TICKET_TTL`."""
    ticket = secrets.token_urlsafe(32)
    session.exec(delete(StreamTicket).where(col(StreamTicket.expires_at) < now))
    session.add(
        StreamTicket(
            sha256=_sha(ticket),
            session_id=principal.session_id,
            username=principal.username,
            expires_at=now + TICKET_TTL,
        )
    )
    session.commit()
    return ticket


def redeem_ticket(session: Session, ticket: str, *, now: datetime) -> Principal:
    """Use a stream ticket up; return the principal of its (still open) session.

    Raises:
        AuthError: unknown, used or expired ticket, or its session is over.
    """
    digest = _sha(ticket)
    used = session.exec(
        update(StreamTicket)
        .where(col(StreamTicket.sha256) == digest)
        .where(col(StreamTicket.used_at).is_(None))
        .where(col(StreamTicket.expires_at) > now)
        .values(used_at=now)
    )
    session.commit()
    if used.rowcount != 1:
        raise AuthError(
            "expected a fresh stream ticket, got an unknown, used or expired one"
        )
    row = session.get(StreamTicket, digest)
    sess = session.get(OperatorSession, row.session_id) if row is not None else None
    op = session.get(Operator, sess.username) if sess is not None else None
    if sess is None or op is None or sess.revoked_at is not None or not op.active:
        raise AuthError("expected a stream ticket of an open session, got an ended one")
    return _principal(op, sess.id)


def throttle_wait(session: Session, keys: Sequence[str], *, now: datetime) -> int:
    """The longest wait, in whole seconds, any of ``keys`` is locked for."""
    rows = session.exec(select(LoginThrottle).where(col(LoginThrottle.key).in_(keys)))
    return max((throttle.retry_after(_attempts(r), now) for r in rows.all()), default=0)


def _attempts(row: LoginThrottle) -> throttle.Attempts:
    return throttle.Attempts(
        failures=row.failures,
        window_start=as_utc(row.window_start),
        locked_until=as_utc(row.locked_until) if row.locked_until else None,
        lockouts=row.lockouts,
    )


def record_failure(
    session: Session,
    keys: Sequence[tuple[str, throttle.ThrottlePolicy]],
    *,
    now: datetime,
) -> list[tuple[str, throttle.Attempts]]:
    """Count one failed login against each key; return the keys it locked.

    Counters whose run is over are deleted on the way, so the table holds
    only the keys that failed within the last window.
    """
    locked: list[tuple[str, throttle.Attempts]] = []
    for _attempt in range(5):
        locked.clear()
        try:
            for key, policy in keys:
                row = session.exec(
                    select(LoginThrottle)
                    .where(LoginThrottle.key == key)
                    .with_for_update()
                ).first()
                state, newly = throttle.on_failure(
                    _attempts(row) if row is not None else None, now, policy
                )
                row = row or LoginThrottle(key=key, window_start=now)
                row.failures = state.failures
                row.window_start = state.window_start
                row.locked_until = state.locked_until
                row.lockouts = state.lockouts
                session.add(row)
                if newly:
                    locked.append((key, state))
            window = max(p.window for _k, p in keys)
            session.exec(
                delete(LoginThrottle)
                .where(col(LoginThrottle.window_start) < now - window)
                .where(
                    sa.or_(
                        col(LoginThrottle.locked_until).is_(None),
                        col(LoginThrottle.locked_until) < now - window,
                    )
                )
                .where(col(LoginThrottle.key).not_in([k for k, _p in keys]))
            )
            session.commit()
        except IntegrityError:  # a racing first failure of the same key
            session.rollback()
            continue
        return locked
    return locked


def reserve_attempt(
    session: Session,
    keys: Sequence[tuple[str, throttle.ThrottlePolicy]],
    *,
    now: datetime,
) -> tuple[int, list[tuple[str, throttle.Attempts]]]:
    """Check and count a password attempt in one step, before it is checked.

    Any locked key: ``(wait, [])`` and nothing counted. Else the attempt
    counts as a failure of each key (:func:`record_failure`) and the keys it
    locked come back; a correct password then gives its count back
    (:func:`clear_failures`, :func:`refund`). The write lock is taken before
    the counters are read, so concurrent guesses are counted one by one
    instead of all passing the same check (red team 10).
    """
    names = [k for k, _p in keys]
    for _attempt in range(5):
        try:
            # The writer's lock first (SQLite: the database; PostgreSQL: the rows).
            session.exec(
                update(LoginThrottle)
                .where(col(LoginThrottle.key).in_(names))
                .values(failures=LoginThrottle.failures)
            )
            wait = throttle_wait(session, names, now=now)
            if wait:
                session.rollback()
                return wait, []
            return 0, record_failure(session, keys, now=now)
        except IntegrityError:  # pragma: no cover - record_failure retries these
            session.rollback()
    return 1, []


def refund(session: Session, key: str) -> None:
    """Give back one reserved attempt of ``key`` (the password was right)."""
    session.exec(
        update(LoginThrottle)
        .where(col(LoginThrottle.key) == key, col(LoginThrottle.failures) > 0)
        .where(col(LoginThrottle.locked_until).is_(None))
        .values(failures=LoginThrottle.failures - 1)
    )
    session.commit()


def clear_failures(session: Session, key: str) -> None:
    """Forget a key's failures (an account after a successful login)."""
    session.exec(delete(LoginThrottle).where(col(LoginThrottle.key) == key))
    session.commit()
