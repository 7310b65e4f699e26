"""Golden ESC/POS bytes: the kiosk's receipt and the simulated printer, by the book.

Every command below is written by hand from Epson's ESC/POS Command
Reference (the TM-series "ESC/POS Application Programming Guide" command
pages), not produced by python-escpos or our decoder:

    ESC @           1B 40           initialise printer
    FS &            1C 26           select Kanji (here: GB18030 Chinese) mode
    FS .            1C 2E           cancel Kanji mode
    ESC ! n         1B 21 n         print mode (0x10 double height, 0 normal)
    ESC E n         1B 45 n         emphasised on (1) / off (0)
    ESC a n         1B 61 n         justification: 0 left, 1 centre, 2 right
    ESC d n         1B 64 n         print and feed n lines
    ESC R n         1B 52 n         international character set (15 China)
    GS ! n          1D 21 n         character size
    GS V m          1D 56 m         cut (m = 0 full cut); GS V 65 n feeds n, cuts
    GS ( k          1D 28 6B pL pH cn fn …, (pL + 256 pH) bytes from cn on;
                    cn 49 (0x31) QR code:
                    fn 65 (0x41) n1 n2 select model (n1 50 = model 2, n2 0)
                    fn 67 (0x43) n     module size in dots
                    fn 69 (0x45) n     error correction (48 L, 49 M, 50 Q, 51 H)
                    fn 80 (0x50) m d…  store data (m 48), pL pH = k + 3
                    fn 81 (0x51) m     print the stored symbol (m 48)
    DLE EOT n       10 04 n         real-time status; n 4 roll paper sensor:
                                    0x12 paper present, bits 5-6 (0x60) paper
                                    end, so 0x72 without paper

Chinese text is GB18030 (for these characters the GB 2312 codes): 投 CD B6,
诉 CB DF, 受 CA DC, 理 C0 ED, 回 BB D8, 执 D6 B4, 查 B2 E9, 询 D1 AF, 码 C2 EB,
the full-width colon A3 BA.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import TYPE_CHECKING

import pytest

from firmware_sim.gnss import open_pty
from firmware_sim.printer import PAPER_OK, PAPER_OUT, EscPosDecoder
from kiosk.printer import PrinterError, ReceiptLines, ReceiptPrinter

if TYPE_CHECKING:
    from collections.abc import Iterator


def h(text: str) -> bytes:
    return bytes.fromhex(text)


TITLE = h("CD B6 CB DF CA DC C0 ED BB D8 D6 B4")  # 投诉受理回执
CODE_LINE = h("B2 E9 D1 AF C2 EB A3 BA") + b"AB12"  # 查询码：AB12
QR_URL = b"https://x.cn/q?c=AB12"  # 21 bytes: pL = 21 + 3 = 0x18


class RawPrinter:
    """A pty that records every byte and answers DLE EOT like a printer."""

    def __init__(self, *, paper: bool = True) -> None:
        self.pty = open_pty()
        self.paper = paper
        self.raw = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.pty.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.pty.master, 4096)
            except OSError:
                continue
            self.raw += data
            pending += data
            while (at := pending.find(b"\x10\x04")) >= 0 and len(pending) > at + 2:
                os.write(self.pty.master, bytes((0x12 if self.paper else 0x72,)))
                del pending[: at + 3]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.pty.close()


@pytest.fixture
def raw_printer() -> Iterator[RawPrinter]:
    printer = RawPrinter()
    yield printer
    printer.close()


def print_one(device: str) -> None:
    printer = ReceiptPrinter(device)
    try:
        printer.print_receipt(
            ReceiptLines(
                title="投诉受理回执",
                lines=("查询码：AB12",),
                qr=QR_URL.decode(),
                footer="",
            )
        )
    finally:
        printer.close()


def test_the_kiosks_receipt_is_made_of_the_reference_commands(
    raw_printer: RawPrinter,
) -> None:
    print_one(raw_printer.pty.path)
    deadline = time.monotonic() + 3
    while not raw_printer.raw.endswith(h("1D 56 00")) and time.monotonic() < deadline:
        time.sleep(0.02)
    raw = bytes(raw_printer.raw)
    assert raw.startswith(h("10 04 04"))  # paper sensor asked first
    body = raw[3:]
    assert body.startswith(h("1B 40 1C 26"))  # initialise, Chinese mode
    title_at = body.index(TITLE + b"\n")
    # before the title: double height, emphasised, centred
    for command in (h("1B 21 10"), h("1B 45 01"), h("1B 61 01")):
        assert command in body[:title_at]
    code_at = body.index(CODE_LINE + b"\n")
    # between them: back to normal size, not emphasised, left
    for command in (h("1B 21 00"), h("1B 45 00"), h("1B 61 00")):
        assert command in body[title_at:code_at]
    qr = (
        h("1D 28 6B 04 00 31 41 32 00")  # model 2
        + h("1D 28 6B 03 00 31 43 06")  # module 6 dots
        + h("1D 28 6B 03 00 31 45 30")  # error correction L
        + h("1D 28 6B 18 00 31 50 30")  # store 21 bytes (pL 0x18)
        + QR_URL
        + h("1D 28 6B 03 00 31 51 30")  # print it
    )
    qr_at = body.index(qr)
    assert qr_at > code_at
    tail = body[qr_at + len(qr) :]
    assert tail.startswith(h("1C 2E"))  # Chinese mode off
    assert tail.endswith(h("1D 56 00"))  # full cut, last


def test_no_paper_is_a_paper_out_fault_and_nothing_is_printed() -> None:
    printer = RawPrinter(paper=False)
    try:
        with pytest.raises(PrinterError, match="paper_out") as caught:
            print_one(printer.pty.path)
        assert caught.value.reason == "paper_out"
        time.sleep(0.1)
        assert bytes(printer.raw) == h("10 04 04")
    finally:
        printer.close()


# A receipt written by hand from the reference, as another kiosk vendor's
# software might send it: other commands, the same meaning.
REFERENCE = (
    h("1B 40")  # ESC @
    + h("1B 52 0F")  # ESC R 15: China
    + h("1C 26")  # FS &
    + h("1B 61 01 1B 45 01 1D 21 01")  # centre, emphasised, double height
    + TITLE
    + h("0A")
    + h("1B 61 00 1B 45 00 1D 21 00")  # left, normal
    + CODE_LINE
    + h("0A")
    + h("1D 28 6B 04 00 31 41 32 00")
    + h("1D 28 6B 03 00 31 43 04")
    + h("1D 28 6B 03 00 31 45 31")  # error correction M
    + h("1D 28 6B 18 00 31 50 30")
    + QR_URL
    + h("1D 28 6B 03 00 31 51 30")
    + h("1C 2E")  # FS .
    + h("1B 64 03")  # feed 3 lines
    + h("1D 56 41 03")  # GS V 65 3: feed and cut
    + h("10 04 04")  # paper?
)


@pytest.mark.parametrize("chunk", [1, 2, 7, len(REFERENCE)])
def test_the_simulated_printer_decodes_the_reference_receipt(chunk: int) -> None:
    decoder = EscPosDecoder()
    asked: list[int] = []
    for i in range(0, len(REFERENCE), chunk):
        asked += decoder.feed(REFERENCE[i : i + chunk])
    assert asked == [4]
    (receipt,) = decoder.receipts
    assert receipt.lines[:2] == ["投诉受理回执", "查询码：AB12"]
    assert receipt.qr == [QR_URL.decode()]
    assert PAPER_OK == 0x12  # the reference's "paper present"
    assert PAPER_OUT == 0x72  # and "paper end" (bits 5 and 6)
