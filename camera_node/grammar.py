"""The grammar of Chinese number plates, and CTC decoding constrained to it.

Pure (numpy only): a recogniser's per-timestep character probabilities in,
the most likely *valid* plate out. A plate is a province character, a
letter (the issuing office), then five characters (six on green new-energy
plates) of letters without I and O and digits; special plates end in 学,
警, 挂, 港 or 澳. Constraining the decoder to this grammar is what turns a
general OCR model into a plate reader: it can no longer read an O for a 0
or drop the province. The best path is found exactly (Viterbi over CTC
alignments through the grammar's positions), with per-character confidence
and the runner-up at each position as the likely alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.protocol.plates import positions

NEG = -1e30


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
    alphabet: Alphabet, length: int, probs: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Allowed classes per position, their local indices, and local log-probs."""
    allowed = [alphabet.indices(a) for a in positions(length)]
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


def decode(
    probs: np.ndarray, alphabet: Alphabet, length: int
) -> tuple[PlateRead, float]:
    """The best plate of ``length`` through ``probs`` (T × classes), with its score."""
    allowed, table, logp = _table(alphabet, length, probs)
    picked, emitted, score = _backtrack(*_viterbi(table, logp))
    classes = [int(allowed[k][picked[k]]) for k in range(length)]
    text = "".join(alphabet.chars[c] for c in classes)
    confs = tuple(float(probs[emitted[k], classes[k]]) for k in range(length))
    confidence = float(np.prod(confs))
    alts = []
    for k in range(length):
        row = probs[emitted[k], allowed[k]]
        first, second = np.argsort(row)[::-1][:2]
        other = alphabet.chars[int(allowed[k][second])]
        share = float(row[second]) / max(float(row[first]), 1e-12)
        alts.append((text[:k] + other + text[k + 1 :], confidence * share))
    alts.sort(key=lambda x: -x[1])
    read = PlateRead(
        text=text, confidence=confidence, chars=confs, alternatives=tuple(alts[:3])
    )
    return read, score


def best_plate(
    probs: np.ndarray, alphabet: Alphabet, *, lengths: tuple[int, ...] = (7, 8)
) -> PlateRead:
    """The best plate of the allowed lengths (7, and 8 for new energy)."""
    best, score = decode(probs, alphabet, lengths[0])
    for length in lengths[1:]:
        other, other_score = decode(probs, alphabet, length)
        if other_score > score:
            best, score = other, other_score
    return best
