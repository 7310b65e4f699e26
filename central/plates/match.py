"""Matching plate reads against the suspect list, tolerant of OCR confusions.

Pure. A plate read may confuse characters that look alike on a plate —
0/D/Q/U, 8/B, 1/I/T, 2/Z/7, 5/S, 6/G, A/4, E/F — and the province character is
the hardest to read. Every listed plate is indexed twice: by its exact text
and by its *confusion key* (the serial after the province, each character
replaced by its look-alike class), so a read finds its candidates in two
dictionary look-ups however large the list. Candidates are ranked by
likelihood: each differing character costs the chance of that confusion
(more likely when the reader was unsure of it), a different province costs
less than a different serial. An exact read is a *hit*; a confusable one is
a *possible hit* only when the read itself was unsure (a confident read of
a different plate is a different car). The reader's own alternatives (its
other grammar-valid hypotheses, as text or as text and confidence) that
are listed are possible hits too, each as likely as its share of the
reader's belief.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

CONFUSIONS = ("0DQU", "8B", "1IT", "27Z", "5S", "6G", "4A", "EF")
_CLASS = {c: group[0] for group in CONFUSIONS for c in group}
KEY = str.maketrans(_CLASS)
P_CONFUSE = 0.25  # a look-alike character, read with no particular doubt
P_PROVINCE = 0.35  # the province character read as another province
Kind = Literal["exact", "possible"]


def confusion_key(text: str) -> str:
    """The serial after the province, look-alike characters folded together."""
    return text[1:].translate(KEY)


@dataclass(frozen=True, slots=True)
class Listed:
    """A plate on the suspect list (what the index needs of it)."""

    suspect_id: int
    plate: str
    category: str


@dataclass(frozen=True, slots=True)
class Match:
    """A read that matches a listed plate, and how likely it is that car."""

    listed: Listed
    kind: Kind
    score: float  # 1.0 for an exact read; the confusion likelihood otherwise


def likelihood(read: str, listed: str, chars: Sequence[float] = ()) -> float:
    """How likely ``read`` is a misreading of ``listed`` (0 when impossible)."""
    if len(read) != len(listed):
        return 0.0
    score = 1.0
    for k, (r, s) in enumerate(zip(read, listed, strict=True)):
        if r == s:
            continue
        # A character the reader was sure of is unlikely to be a misreading.
        doubt = min(1.0, 2.0 * (1.0 - chars[k])) if k < len(chars) else 1.0
        if k == 0:
            score *= P_PROVINCE * doubt
        elif _CLASS.get(r, r) == _CLASS.get(s, s):
            score *= P_CONFUSE * doubt
        else:
            return 0.0
    return min(score, 1.0)


class SuspectIndex:
    """The suspect list, indexed for exact and confusion-tolerant look-ups."""

    def __init__(self, listed: Iterable[Listed] = ()) -> None:
        self._exact: dict[str, list[Listed]] = defaultdict(list)
        self._fuzzy: dict[tuple[int, str], list[Listed]] = defaultdict(list)
        self.size = 0
        for item in listed:
            self.add(item)

    def add(self, item: Listed) -> None:
        """Index one listed plate."""
        self._exact[item.plate].append(item)
        self._fuzzy[(len(item.plate), confusion_key(item.plate))].append(item)
        self.size += 1

    def match(
        self,
        text: str,
        *,
        confidence: float = 1.0,
        chars: Sequence[float] = (),
        alternatives: Sequence[str | tuple[str, float]] = (),
        unsure_below: float = 0.9,
        min_score: float = 0.01,
    ) -> list[Match]:
        """Listed plates this read may be, most likely first.

        Exact reads are hits. When the read is unsure (``confidence`` below
        ``unsure_below``), confusable listed plates and listed plates equal to
        one of the reader's alternatives are possible hits. An alternative
        with its confidence scores its share of the reader's belief (its
        confidence over the read's and its own); a bare one, half the doubt
        in the read, less for each one ranked above it.
        """
        out = [Match(item, "exact", 1.0) for item in self._exact.get(text, ())]
        if confidence >= unsure_below:
            return out
        seen = {m.listed.suspect_id for m in out}
        for item in self._fuzzy.get((len(text), confusion_key(text)), ()):
            if item.suspect_id in seen:
                continue
            score = likelihood(text, item.plate, chars)
            if score >= min_score:
                out.append(Match(item, "possible", score))
                seen.add(item.suspect_id)
        for rank, alt in enumerate(alternatives):
            if isinstance(alt, str):
                text_alt, score = alt, 0.5 * (1 - confidence) / (rank + 1)
            else:
                text_alt, conf = alt
                score = conf / max(conf + confidence, 1e-9)
            for item in self._exact.get(text_alt, ()):
                if item.suspect_id not in seen:
                    out.append(Match(item, "possible", max(min_score, min(score, 1.0))))
                    seen.add(item.suspect_id)
        return sorted(out, key=lambda m: (m.kind != "exact", -m.score))
