"""The reader's hypotheses reach the suspect matcher as possible hits."""

from __future__ import annotations

import numpy as np

from camera_node.grammar import Alphabet, best_plate, patterns_for
from central.plates.match import Listed, SuspectIndex, confusion_key

CHARS = "渝赣ABEF0123456789"


def _probs(steps: list[dict[str, float]]) -> np.ndarray:
    alpha = ("<blank>", *CHARS, " ")
    out = np.full((len(steps), len(alpha)), 1e-4)
    for t, mix in enumerate(steps):
        for ch, p in mix.items():
            out[t, alpha.index(ch)] = p
    normalised: np.ndarray = out / out.sum(axis=1, keepdims=True)
    return normalised


def test_an_unsure_character_reaches_the_listed_plate() -> None:
    # 3 and 8 are not look-alikes for the matcher's key: only the reader's
    # own runner-up can lead it to the listed 赣A12845.
    blank = {"<blank>": 0.95}
    steps: list[dict[str, float]] = []
    for mix in ("赣", "A", "1", "2", {"3": 0.5, "8": 0.45}, "4", "5"):
        steps += [{mix: 0.95} if isinstance(mix, str) else mix, blank]
    read = best_plate(
        _probs(steps), Alphabet(("<blank>", *CHARS, " ")), patterns=patterns_for("blue")
    )
    assert read.text == "赣A12345"
    assert confusion_key("赣A12345") != confusion_key("赣A12845")
    index = SuspectIndex(
        [Listed(7, "赣A12845", "stolen"), Listed(8, "渝B99999", "other")]
    )
    matches = index.match(
        read.text,
        confidence=read.confidence,
        chars=read.chars,
        alternatives=read.alternatives,
    )
    assert [(m.listed.suspect_id, m.kind) for m in matches] == [(7, "possible")]
    assert 0.3 < matches[0].score < 0.6


def test_alternatives_as_text_rank_by_order() -> None:
    index = SuspectIndex(
        [Listed(1, "鄂A12345", "stolen"), Listed(2, "鄂A12348", "wanted")]
    )
    matches = index.match(
        "鄂A1234B", confidence=0.5, alternatives=["鄂A12348", "鄂A12345"]
    )
    # 鄂A12348 is also a look-alike (8/B) and comes first; both are possible.
    assert {m.listed.suspect_id for m in matches} == {1, 2}
    assert all(m.kind == "possible" for m in matches)


def test_e_and_f_are_look_alikes() -> None:
    assert confusion_key("湘AE1234") == confusion_key("湘AF1234")
