from datetime import UTC, datetime, timedelta

import pytest

from provisioning.codes import (
    ALPHABET,
    CodeError,
    CodeState,
    check_usable,
    new_code,
    normalise,
)

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)


def test_codes_are_typable_and_normalised() -> None:
    code = new_code()
    assert len(code) == 9
    assert code[4] == "-"
    assert all(c in ALPHABET for c in code.replace("-", ""))
    assert normalise(f" {code.lower().replace('-', ' ')} ") == code


@pytest.mark.parametrize(
    ("state", "reason", "words"),
    [
        (None, "unknown", "not known"),
        (
            CodeState(expires_at=NOW - timedelta(seconds=1), used_at=None),
            "expired",
            "expired at",
        ),
        (
            CodeState(
                expires_at=NOW + timedelta(hours=1), used_at=NOW - timedelta(minutes=3)
            ),
            "used",
            "already used",
        ),
    ],
)
def test_unusable_codes_say_what_to_do(
    state: CodeState | None, reason: str, words: str
) -> None:
    with pytest.raises(CodeError, match=words) as info:
        check_usable(state, now=NOW)
    assert info.value.reason == reason
    assert "new code" in str(info.value) or "check it" in str(info.value)


def test_a_fresh_code_is_usable() -> None:
    check_usable(CodeState(expires_at=NOW + timedelta(hours=24), used_at=None), now=NOW)


@pytest.mark.parametrize("typed", ["K7QP-M2X", "K7QP-M2XO", "", "K7QP M2XD1"])
def test_malformed_codes(typed: str) -> None:
    with pytest.raises(CodeError) as info:
        normalise(typed)
    assert info.value.reason == "malformed"
