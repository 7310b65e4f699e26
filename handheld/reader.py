"""A GNSS receiver's byte stream → fixes, with every refusal counted.

Pure and total: :class:`GnssReader` takes whatever bytes the receiver
sends (NMEA mixed with UBX, RTCM or other binary, line noise, a wrong baud
rate) and the node's time, and returns fixes and :class:`Refusal` values;
no input makes it raise. It ties :class:`handheld.nmea.SentenceFramer`,
:func:`handheld.nmea.parse_sentence` and
:class:`handheld.epoch.FixAssembler` together and keeps the counts a
technician and the health report need, in two families: *junk*
(``checksum``, ``malformed``, ``date`` — the receiver or the line is
faulty) and *no fix* (``no_fix`` — the receiver is fine but has no
position). Reading the port and trusting fixes are left to the agent and
:mod:`handheld.gnss`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handheld.epoch import Fix, FixAssembler, NoFix
from handheld.nmea import Ignored, NmeaError, SentenceFramer, parse_sentence

if TYPE_CHECKING:
    from datetime import datetime

    from handheld.nmea import Framed

JUNK_REASONS = frozenset({"checksum", "malformed", "date"})
NO_FIX_REASONS = frozenset({"no_fix"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Something the reader did not turn into a fix, and why."""

    reason: str  # one of JUNK_REASONS or NO_FIX_REASONS
    detail: str


class GnssReader:
    """Bytes in, fixes and refusals out; counts kept."""

    def __init__(self) -> None:
        self._framer = SentenceFramer()
        self._assembler = FixAssembler()
        self.refused: Counter[str] = Counter()
        self.sentences: Counter[str] = Counter()  # good ones: "GGA", ..., "other"
        self.fixes = 0
        self.bytes_read = 0

    @property
    def noise_bytes(self) -> int:
        """Bytes outside any sentence (binary protocols, noise)."""
        return self._framer.noise_bytes

    @property
    def junk(self) -> int:
        """Sentences refused because they were broken."""
        return sum(self.refused[r] for r in JUNK_REASONS)

    @property
    def good(self) -> int:
        """Sentences that were well-formed NMEA, used or not."""
        return self.sentences.total()

    def feed(self, data: bytes, *, now: datetime) -> list[Fix | Refusal]:
        """Take the next bytes from the receiver.

        Args:
            data: any bytes, cut anywhere.
            now: the node's clock (only for a date the receiver does not send).

        Returns:
            The fixes and refusals completed by these bytes, in stream order.
        """
        self.bytes_read += len(data)
        return self._take(self._framer.feed(data), now)

    def finish(self, *, now: datetime) -> list[Fix | Refusal]:
        """End of a capture: settle the last sentence and the last epoch."""
        out = self._take(self._framer.finish(), now)
        out += self._outcomes(self._assembler.finish(now=now))
        return out

    def _take(self, framed: list[Framed], now: datetime) -> list[Fix | Refusal]:
        out: list[Fix | Refusal] = []
        for item in framed:
            if item.reason == "proprietary":
                self.sentences["proprietary"] += 1
                continue
            if item.reason:
                out.append(self._refuse(item.reason, item.detail))
                continue
            try:
                sentence = parse_sentence(item.text)
            except NmeaError as exc:
                out.append(self._refuse(exc.reason, str(exc)))
                continue
            if isinstance(sentence, Ignored):
                self.sentences[sentence.why] += 1
                continue
            self.sentences[sentence.kind] += 1
            out += self._outcomes(self._assembler.feed(sentence, now=now))
        return out

    def _outcomes(self, done: list[Fix | NoFix]) -> list[Fix | Refusal]:
        out: list[Fix | Refusal] = []
        for item in done:
            if isinstance(item, NoFix):
                out.append(
                    self._refuse(
                        "no_fix",
                        f"epoch {item.time.isoformat()}: {', '.join(item.sentences)}"
                        " say no position",
                    )
                )
            else:
                self.fixes += 1
                out.append(item)
        return out

    def _refuse(self, reason: str, detail: str) -> Refusal:
        self.refused[reason] += 1
        return Refusal(reason=reason, detail=detail)
