from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from edge.protocol.signing import (
    CommandAuthError,
    key_id,
    public_key_from_text,
    public_key_text,
    sign_command,
    verify_command,
)
from edge.trust import TrustStore

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}


class Ledger:
    def __init__(self) -> None:
        self.nonces: set[str] = set()

    def seen(self, nonce: str, *, expires: datetime) -> bool:
        del expires
        if nonce in self.nonces:
            return True
        self.nonces.add(nonce)
        return False


def signed(**kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "device": "cab-1",
        "name": "flash",
        "args": {"s": 30},
        "nonce": "n1",
        "now": NOW,
    }
    values.update(kw)
    return sign_command(KEY, **values)


def check(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "device": "cab-1",
        "name": "flash",
        "keys": KEYS,
        "now": NOW,
        "ledger": Ledger(),
    }
    values.update(kw)
    return verify_command(body, **values)


def test_a_good_command_verifies_once() -> None:
    ledger = Ledger()
    body = signed()
    assert check(body, ledger=ledger) == {"s": 30}
    with pytest.raises(CommandAuthError, match="fresh nonce") as info:
        check(body, ledger=ledger)
    assert info.value.reason == "replay"


@pytest.mark.parametrize(
    ("body", "kw", "reason"),
    [
        ({"args": {}}, {}, "unsigned"),
        ({"auth": {"kid": "x"}}, {}, "malformed"),
        (signed(), {"keys": {}}, "unknown_key"),
        (signed(), {"device": "cab-2"}, "bad_signature"),
        (signed(), {"name": "hold"}, "bad_signature"),
        (signed(), {"now": NOW + timedelta(minutes=3)}, "expired"),
    ],
)
def test_refusals_name_their_rule(
    body: dict[str, Any], kw: dict[str, Any], reason: str
) -> None:
    with pytest.raises(CommandAuthError) as info:
        check(body, **kw)
    assert info.value.reason == reason


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=4))
def test_any_change_of_args_breaks_the_signature(args: dict[str, int]) -> None:
    body = signed()
    if args == body["args"]:
        return
    body["args"] = args
    with pytest.raises(CommandAuthError) as info:
        check(body)
    assert info.value.reason == "bad_signature"


def test_keys_round_trip_and_bad_text() -> None:
    text = public_key_text(KEY.public_key())
    assert key_id(public_key_from_text(text)) == key_id(KEY.public_key())
    with pytest.raises(CommandAuthError, match="base64 Ed25519"):
        public_key_from_text("not a key")


def test_trust_store_survives_restart_and_forgets_expired_nonces(
    tmp_path: Path,
) -> None:
    store = TrustStore(
        tmp_path / "t.sqlite3", initial_keys=[public_key_text(KEY.public_key())]
    )
    assert store.seen("a", expires=datetime.now(UTC) + timedelta(minutes=1)) is False
    assert store.seen("old", expires=datetime.now(UTC) - timedelta(minutes=1)) is False
    store.close()
    again = TrustStore(tmp_path / "t.sqlite3")
    assert list(again.keys()) == list(KEYS)
    assert again.seen("a", expires=datetime.now(UTC) + timedelta(minutes=1)) is True
    assert again.seen("old", expires=datetime.now(UTC) + timedelta(minutes=1)) is False
    assert again.remove(next(iter(KEYS))) is True
    assert again.keys() == {}
