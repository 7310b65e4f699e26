"""The grammar of Chinese number plates, and CTC decoding constrained to it.

Pure (numpy only): a recogniser's per-timestep character probabilities in,
the most likely *valid* plate out. A plate is a province character, a
letter (the issuing office), then five characters of letters without I and
O and digits; special plates end in 学, 警, 挂, 港 or 澳. Green new-energy
plates have six (GA 36-2018): a small car's serial starts with D or F (A-K
since the later extension), then a letter or digit and four digits; a
large vehicle's is five digits then D or F. The plate's colour picks the
patterns (:func:`patterns_for`): the 警 suffix only on white police plates,
学 and 挂 only on yellow ones, 港 and 澳 on black ones (the office letter O
stays: 粤O plates are blue too). Constraining the
decoder to these patterns is what turns a general OCR model into a plate
reader: it can no longer read an O for a 0, drop the province, or read a
new-energy plate's last four digits as letters. The best path is found
exactly (Viterbi over CTC alignments through the pattern's positions), with
per-character confidence; the runner-up at each position and the best read
of every other pattern are kept as the likely alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.protocol.plates import (
    DIGITS,
    OFFICES,
    PROVINCES,
    SERIAL,
    positions,
)

NEG = -1e30
MAX_ALTERNATIVES = 4  # the wire carries five at most
# Nats a pattern off the plate's colour must win by. On plates-dev's 144
# scenes and 500 crops (all seven characters) the best eight-character path
# stays at least 3.5 nats below the seven-character one, so a green plate
# whose colour was misjudged still reads as eight when its path says so.
OFF_COLOUR_PENALTY = 1.0
Pattern = tuple[str, ...]  # the characters allowed at each position

NEW_ENERGY_SMALL: Pattern = (PROVINCES, OFFICES, "DABCEFGHJK", SERIAL, *[DIGITS] * 4)
NEW_ENERGY_LARGE: Pattern = (PROVINCES, OFFICES, *[DIGITS] * 5, "DF")
NEW_ENERGY = (NEW_ENERGY_SMALL, NEW_ENERGY_LARGE)
PLAIN: Pattern = (PROVINCES, OFFICES, *[SERIAL] * 5)  # blue plates (粤O too)
YELLOW: Pattern = (PROVINCES, OFFICES, *[SERIAL] * 4, SERIAL + "学挂")
WHITE: Pattern = (PROVINCES, OFFICES, *[SERIAL] * 4, SERIAL + "警")
BLACK: Pattern = (PROVINCES, OFFICES, *[SERIAL] * 4, SERIAL + "港澳")
ANY_SEVEN: Pattern = (PROVINCES, OFFICES, *[SERIAL] * 4, SERIAL + "学警挂港澳")
SEVEN: dict[str, Pattern] = {
    "blue": PLAIN,
    "yellow": YELLOW,
    "white": WHITE,
    "black": BLACK,
    "green": ANY_SEVEN,
}


def patterns_for(colour: str) -> tuple[tuple[Pattern, float], ...]:
    """The patterns a plate of ``colour`` may follow, each with its penalty.

    The penalty (in nats, subtracted from the path's log probability) is
    what a pattern off the plate's colour must overcome: a green plate is
    new energy (eight characters) first, any other colour seven, and the
    other length is still read when its path is clearly better (the colour
    can be wrong, and a yellow-green large new-energy plate passes for
    yellow).
    """
    if colour == "green":
        return (
            (NEW_ENERGY_SMALL, 0.0),
            (NEW_ENERGY_LARGE, 0.0),
            (ANY_SEVEN, OFF_COLOUR_PENALTY),
        )
    return (
        (SEVEN.get(colour, ANY_SEVEN), 0.0),
        (NEW_ENERGY_SMALL, OFF_COLOUR_PENALTY),
        (NEW_ENERGY_LARGE, OFF_COLOUR_PENALTY),
    )


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One decoded plate: text, confidence, and the likely alternatives."""

    text: str
    confidence: float  # the product of the per-character confidences
    chars: tuple[float, ...]  # confidence of each character
    alternatives: tuple[tuple[str, float], ...] = ()  # (text, confidence)


class Alphabet:
    """A recogniser's output classes: index 0 is the CTC blank."""

    def __init__(self, chars: tuple[str, ...]) -> None:
        self.chars = chars
        self._where = {c: i for i, c in enumerate(chars)}
        self._cache: dict[str, np.ndarray] = {}

    def indices(self, allowed: str) -> np.ndarray:
        """Class indices of the allowed characters the model knows."""
        found = self._cache.get(allowed)
        if found is None:
            found = np.array(
                [self._where[c] for c in allowed if c in self._where], dtype=np.int64
            )
            self._cache[allowed] = found
        return found


def _table(
    alphabet: Alphabet, pattern: Pattern, probs: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Allowed classes per position, their local indices, and local log-probs."""
    allowed = [alphabet.indices(a) for a in pattern]
    length = len(pattern)
    # Work on the plate's ~70 classes (and the blank), not the model's thousands.
    cols = np.unique(np.concatenate([[0], *allowed]))
    local = {int(c): i for i, c in enumerate(cols)}
    logp = np.log(np.clip(probs[:, cols], 1e-12, 1.0))
    logp = np.concatenate([logp, np.full((len(probs), 1), NEG)], axis=1)  # padding
    table = np.full((length, max(len(a) for a in allowed)), logp.shape[1] - 1)
    for k, a in enumerate(allowed):
        table[k, : len(a)] = [local[int(c)] for c in a]
    return allowed, table, logp


def _viterbi(
    table: np.ndarray, logp: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the constrained CTC Viterbi; return final scores and back-pointers.

    States: "blank after k characters" and "on the k-th character, class j".
    Blank k came from blank k (-1) or from char j of k-1 (j). Char (k, j)
    stayed (-2), came from blank k (-1) or from char i of k-1 (i); a
    character follows a different one directly, itself only across a blank.
    """
    length, width = table.shape
    steps = logp.shape[0]
    rows = np.arange(length)
    blank = np.full(length + 1, NEG)
    blank[0] = 0.0
    chars = np.full((length, width), NEG)
    back_blank = np.empty((steps, length + 1), dtype=np.int64)
    back_char = np.empty((steps, length, width), dtype=np.int64)
    for t in range(steps):
        lp = logp[t]
        best_j = chars.argmax(axis=1)
        best_v = chars[rows, best_j]
        from_char = np.concatenate([[NEG], best_v])
        take = from_char > blank
        back_blank[t] = np.where(take, np.concatenate([[-1], best_j]), -1)
        masked = chars.copy()
        masked[rows, best_j] = NEG
        second_j = masked.argmax(axis=1)
        same = table[1:] == table[:-1][rows[:-1], best_j[:-1]][:, None]
        prev_v = np.where(same, masked[rows, second_j][:-1, None], best_v[:-1, None])
        prev_j = np.where(same, second_j[:-1, None], best_j[:-1, None])
        enter = np.broadcast_to(blank[:length, None], (length, width)).copy()
        src = np.full((length, width), -1, dtype=np.int64)
        better = prev_v > enter[1:]
        enter[1:] = np.where(better, prev_v, enter[1:])
        src[1:] = np.where(better, prev_j, -1)
        stay = chars >= enter
        chars = np.where(stay, chars, enter) + lp[table]
        back_char[t] = np.where(stay, -2, src)
        blank = np.where(take, from_char, blank) + lp[0]
    return blank, chars, back_blank, back_char


def _backtrack(
    blank: np.ndarray,
    chars: np.ndarray,
    back_blank: np.ndarray,
    back_char: np.ndarray,
) -> tuple[list[int], list[int], float]:
    """The best path's chosen column per position, its time step, and its score."""
    length = chars.shape[0]
    last = int(chars[length - 1].argmax())
    if blank[length] >= chars[length - 1, last]:
        on_char, k, j, score = False, length, -1, float(blank[length])
    else:
        on_char, k, j, score = True, length - 1, last, float(chars[length - 1, last])
    picked, emitted = [0] * length, [0] * length
    for t in range(back_blank.shape[0] - 1, -1, -1):
        if not on_char:
            came = int(back_blank[t, k])
            if came != -1:
                on_char, k, j = True, k - 1, came
            continue
        picked[k], emitted[k] = j, t
        came = int(back_char[t, k, j])
        if came == -1:
            on_char = False
        elif came >= 0:
            k, j = k - 1, came
    return picked, emitted, score


def _pattern(pattern: Pattern | int) -> Pattern:
    return tuple(positions(pattern)) if isinstance(pattern, int) else pattern


def decode(
    probs: np.ndarray, alphabet: Alphabet, pattern: Pattern | int
) -> tuple[PlateRead, float]:
    """The best plate of ``pattern`` through ``probs`` (T × classes), with its score.

    ``pattern`` is the allowed characters per position, or a plate length
    for the wire grammar of that length. The score is the path's log
    probability, comparable between patterns over the same ``probs``.
    """
    allowed, table, logp = _table(alphabet, _pattern(pattern), probs)
    length = len(allowed)
    picked, emitted, score = _backtrack(*_viterbi(table, logp))
    classes = [int(allowed[k][picked[k]]) for k in range(length)]
    text = "".join(alphabet.chars[c] for c in classes)
    confs = tuple(float(probs[emitted[k], classes[k]]) for k in range(length))
    confidence = float(np.prod(confs))
    alts = []
    for k in range(length):
        row = probs[emitted[k], allowed[k]]
        if len(row) < 2:  # noqa: PLR2004 - a position with one choice has no runner-up
            continue
        first, second = np.argsort(row)[::-1][:2]
        other = alphabet.chars[int(allowed[k][second])]
        share = float(row[second]) / max(float(row[first]), 1e-12)
        alts.append((text[:k] + other + text[k + 1 :], confidence * share))
    alts.sort(key=lambda x: -x[1])
    read = PlateRead(
        text=text,
        confidence=confidence,
        chars=confs,
        alternatives=tuple(alts[:MAX_ALTERNATIVES]),
    )
    return read, score


def best_plate(
    probs: np.ndarray,
    alphabet: Alphabet,
    *,
    patterns: tuple[tuple[Pattern, float], ...] = (
        (ANY_SEVEN, 0.0),
        (NEW_ENERGY_SMALL, 0.0),
        (NEW_ENERGY_LARGE, 0.0),
    ),
) -> PlateRead:
    """The best plate over ``patterns``, the others' best reads as alternatives.

    Args:
        probs: the recogniser's probabilities, time steps × classes.
        alphabet: the recogniser's classes.
        patterns: each pattern with the penalty its path's log probability
            pays (:func:`patterns_for` gives them for a plate's colour).

    Returns:
        The winning read; its alternatives are the per-character runner-ups
        and the best read of every other pattern that could have won (one
        whose penalty puts even the unconstrained best path below the winner
        is not decoded), most likely first, at most :data:`MAX_ALTERNATIVES`.
    """
    # No path scores above the best step by step over the plate's classes
    # and the blank (the dot between office and serial is no class): a pattern whose
    # penalty already puts that bound below the best so far is not decoded.
    known = alphabet.indices(
        "".join(sorted({c for p, _ in patterns for a in p for c in a}))
    )
    best_step = np.maximum(probs[:, 0], probs[:, known].max(axis=1))
    bound = float(np.log(np.clip(best_step, 1e-12, 1.0)).sum())
    reads: list[tuple[PlateRead, float]] = []
    for pattern, penalty in sorted(patterns, key=lambda x: x[1]):
        if reads and bound - penalty <= max(score for _, score in reads):
            continue
        read, score = decode(probs, alphabet, pattern)
        reads.append((read, score - penalty))
    win = max(range(len(reads)), key=lambda i: reads[i][1])
    best, top = reads[win]
    # Another pattern's read is as likely, relative to the winner, as its
    # whole path is (not its characters: a path that drops one character
    # can keep every other one as sure).
    others = [
        (r.text, best.confidence * float(np.exp(max(score - top, -50.0))))
        for i, (r, score) in enumerate(reads)
        if i != win
    ]
    pool: dict[str, float] = {}
    for text, conf in [*best.alternatives, *others]:
        if text != best.text:
            pool[text] = max(pool.get(text, 0.0), min(conf, best.confidence))
    alts = sorted(pool.items(), key=lambda x: -x[1])[:MAX_ALTERNATIVES]
    return PlateRead(best.text, best.confidence, best.chars, tuple(alts))


def vote_province(
    read: PlateRead, views: list[np.ndarray], alphabet: Alphabet
) -> PlateRead:
    """The province character voted over several views of the same plate.

    Each view (the recogniser's probabilities for one crop of the plate) gives
    every province its best probability at any time step; the shares are
    summed over the views. When the vote names another province than
    ``read``, the read takes it and keeps its own as an alternative.
    """
    where = alphabet.indices(PROVINCES)
    if len(views) < 2 or len(where) == 0:  # noqa: PLR2004 - one view is no vote
        return read
    total = np.zeros(len(where))
    for probs in views:
        best = probs[:, where].max(axis=0)
        total += best / max(float(best.sum()), 1e-12)
    share = total / total.sum()
    winner = alphabet.chars[int(where[int(share.argmax())])]
    if winner == read.text[0]:
        return read
    chars = (float(share.max()), *read.chars[1:])
    confidence = float(np.prod(chars))
    alts = [(read.text, read.confidence), *read.alternatives]
    alts = [
        (t, min(c, confidence))
        for t, c in alts
        if t[0] != winner or t[1:] != read.text[1:]
    ]
    return PlateRead(
        text=winner + read.text[1:],
        confidence=confidence,
        chars=chars,
        alternatives=tuple(sorted(alts, key=lambda x: -x[1])[:MAX_ALTERNATIVES]),
    )
