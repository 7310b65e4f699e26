"""Plate matching benchmark: a million suspects, exact and fuzzy look-ups.

Builds the suspect index over ``--suspects`` random valid plates (the county
list is a few thousand; a national feed is millions), then measures:

* exact look-ups per second (confident reads, the common case);
* fuzzy look-ups per second (unsure reads: exact, confusion and alternative
  look-ups);
* recall: misreads of listed plates made the way OCR makes them (one or two
  look-alike characters — 0/D/Q/U, 8/B, 1/I/T, 2/Z/7, 5/S, 6/G, A/4 — and
  sometimes the province), read with low confidence, and low per-character
  confidence where the reader erred; found = the right suspect is among the
  matches;
* false hits: unsure reads (low confidence at one or two characters) of
  plates that are not listed; false = any match.

Last line: ``match_reads_per_s=<n> match_recall=<0..1> match_false_hit=<0..1>``
(``match_reads_per_s`` is the fuzzy rate, the slower one).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from central.plates.match import CONFUSIONS, Listed, SuspectIndex
from edge.protocol.plates import OFFICES, PROVINCES, SERIAL

LOOKALIKE = {
    c: [o for o in g if o != c and o not in "IO"] for g in CONFUSIONS for c in g
}


def random_plate(rng: random.Random) -> str:
    """A valid blue-plate text."""
    return (
        rng.choice(PROVINCES)
        + rng.choice(OFFICES)
        + "".join(rng.choice(SERIAL) for _ in range(5))
    )


def unsure(rng: random.Random, length: int, doubtful: list[int]) -> list[float]:
    """Per-character confidences: low where the reader hesitated."""
    return [
        rng.uniform(0.3, 0.7) if k in doubtful else rng.uniform(0.9, 1.0)
        for k in range(length)
    ]


def misread(rng: random.Random, plate: str) -> tuple[str, list[float]]:
    """One or two look-alike substitutions, sometimes the province as well.

    Each is where the reader was unsure, as a reader is where it errs.
    """
    chars = list(plate)
    spots = [k for k in range(2, len(chars)) if LOOKALIKE.get(chars[k])]
    changed = rng.sample(spots, min(len(spots), rng.choice((1, 1, 2))))
    for k in changed:
        chars[k] = rng.choice(LOOKALIKE[chars[k]])
    if rng.random() < 0.2:
        chars[0] = rng.choice([p for p in PROVINCES if p != chars[0]])
        changed.append(0)
    return "".join(chars), unsure(rng, len(chars), changed)


def rate(index: SuspectIndex, reads: list[str], confidence: float) -> float:
    """Look-ups per second over ``reads``."""
    started = time.perf_counter()
    for text in reads:
        index.match(text, confidence=confidence)
    return len(reads) / (time.perf_counter() - started)


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suspects", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(2026)
    plates = list({random_plate(rng) for _ in range(args.suspects)})
    started = time.perf_counter()
    index = SuspectIndex(Listed(i, p, "stolen") for i, p in enumerate(plates))
    print(
        f"suspects={index.size:,} index built in {time.perf_counter() - started:.1f} s"
    )
    listed = set(plates)
    reads = [random_plate(rng) for _ in range(args.reads)]
    exact, fuzzy = [], []
    for n in range(args.rounds):
        exact.append(rate(index, reads, confidence=0.97))
        fuzzy.append(rate(index, reads, confidence=0.5))
        print(f"round {n + 1}: exact {exact[-1]:,.0f}/s fuzzy {fuzzy[-1]:,.0f}/s")
    targets = rng.sample(range(len(plates)), 20_000)
    found = 0
    for i in targets:
        wrong, chars = misread(rng, plates[i])
        matches = index.match(wrong, confidence=0.5, chars=chars)
        found += any(m.listed.suspect_id == i for m in matches)
    strangers = [
        p for p in (random_plate(rng) for _ in range(40_000)) if p not in listed
    ]
    false = 0
    for p in strangers:  # unsure at one or two places, like the misreads
        doubtful = rng.sample(range(len(p)), rng.choice((1, 1, 2)))
        chars = unsure(rng, len(p), doubtful)
        false += bool(index.match(p, confidence=0.5, chars=chars))
    recall = found / len(targets)
    false_hit = false / len(strangers)
    print(f"exact look-ups: median {statistics.median(exact):,.0f}/s")
    print(f"fuzzy look-ups: median {statistics.median(fuzzy):,.0f}/s")
    print(f"recall on {len(targets):,} confusable misreads: {recall:.4f}")
    print(
        f"false hits on {len(strangers):,} unlisted plates read unsure: {false_hit:.4f}"
    )
    print(
        f"match_reads_per_s={statistics.median(fuzzy):.0f} "
        f"match_recall={recall:.4f} match_false_hit={false_hit:.4f}"
    )


if __name__ == "__main__":
    main()
