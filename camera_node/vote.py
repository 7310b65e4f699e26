"""One vehicle seen in several frames becomes one read.

Pure: reads of the same track (frames close in time, plates that agree on
most characters) are voted character by character, each vote weighted by
that character's confidence, so one bad frame cannot win over three good
ones. The shell decides when a track has ended.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from camera_node.grammar import PlateRead


def similar(a: str, b: str) -> bool:
    """Whether two reads are likely the same plate (same length, ≤ 2 differences)."""
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 2  # noqa: PLR2004


@dataclass
class Track:
    """The reads of one vehicle so far."""

    reads: list[PlateRead] = field(default_factory=list)
    first_seen: float = 0.0
    last_seen: float = 0.0

    def matches(self, read: PlateRead) -> bool:
        """Whether ``read`` belongs to this track."""
        return any(similar(read.text, r.text) for r in self.reads[-3:])


def vote(reads: list[PlateRead]) -> PlateRead:
    """Vote reads of one vehicle into one; confidence is the agreement.

    Raises:
        ValueError: no reads.
    """
    if not reads:
        raise ValueError("expected at least one read to vote on")
    lengths: dict[int, float] = defaultdict(float)
    for r in reads:
        lengths[len(r.text)] += r.confidence
    length = max(lengths, key=lambda n: lengths[n])
    same = [r for r in reads if len(r.text) == length]
    chars, confs = [], []
    for k in range(length):
        weight: dict[str, float] = defaultdict(float)
        for r in same:
            weight[r.text[k]] += r.chars[k]
        best = max(weight, key=lambda c: weight[c])
        chars.append(best)
        confs.append(weight[best] / max(sum(weight.values()), 1e-9))
    text = "".join(chars)
    best_single = max(same, key=lambda r: r.confidence)
    confidence = min(1.0, best_single.confidence * 0.5 + 0.5 * float(min(confs)))
    alternatives = tuple(
        (r.text, r.confidence)
        for r in sorted(same, key=lambda r: -r.confidence)
        if r.text != text
    )[:3]
    return PlateRead(
        text=text,
        confidence=confidence,
        chars=tuple(confs),
        alternatives=alternatives or best_single.alternatives,
    )
