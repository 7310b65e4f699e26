"""The suspect index: exact hits, possible hits on unsure reads, nothing else."""

from __future__ import annotations

from central.plates.match import Listed, SuspectIndex, confusion_key, likelihood

LIST = [
    Listed(1, "湘F8B123", "stolen"),
    Listed(2, "湘FD0555", "wanted"),
    Listed(3, "鄂A12345", "unpaid"),
]


def test_exact_read_is_a_hit_whatever_the_confidence() -> None:
    index = SuspectIndex(LIST)
    for confidence in (0.99, 0.3):
        matches = index.match("湘F8B123", confidence=confidence)
        assert next((m.listed.suspect_id, m.kind, m.score) for m in matches) == (
            1,
            "exact",
            1.0,
        )


def test_confusable_misread_is_a_possible_hit_only_when_unsure() -> None:
    index = SuspectIndex(LIST)
    misread = "湘FB8123"  # 8 and B swapped
    assert index.match(misread, confidence=0.97) == []  # a confident read: another car
    unsure = index.match(
        misread, confidence=0.5, chars=[0.99, 0.99, 0.5, 0.5, 0.99, 0.99, 0.99]
    )
    assert [(m.listed.suspect_id, m.kind) for m in unsure] == [(1, "possible")]
    assert 0 < unsure[0].score < 1


def test_province_is_soft_and_unrelated_plates_match_nothing() -> None:
    index = SuspectIndex(LIST)
    other_province = index.match("皖FDQ5S5", confidence=0.4)
    assert [m.listed.suspect_id for m in other_province] == [2]
    assert index.match("湘F999Y9", confidence=0.2) == []
    assert index.match("湘F8B12", confidence=0.2) == []  # a different length


def test_alternatives_can_make_a_possible_hit() -> None:
    index = SuspectIndex(LIST)
    matches = index.match("鄂A12346", confidence=0.6, alternatives=["鄂A12345"])
    assert [(m.listed.suspect_id, m.kind) for m in matches] == [(3, "possible")]


def test_likelihood_prefers_fewer_and_doubtful_confusions() -> None:
    one = likelihood("湘FB8123", "湘F8B123")
    doubtful = likelihood("湘FB8123", "湘F8B123", [1, 1, 0.5, 0.5, 1, 1, 1])
    sure = likelihood("湘FB8123", "湘F8B123", [1, 1, 0.99, 0.99, 1, 1, 1])
    assert sure < one <= doubtful
    assert likelihood("湘FX8123", "湘F8B123") == 0.0  # X and 8 do not look alike
    assert confusion_key("湘FB8Q23") == confusion_key("皖F880Z3")
