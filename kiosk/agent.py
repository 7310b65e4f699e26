"""The kiosk agent: the screen's web app, the printer, the outbox, the content.

The web app (:mod:`kiosk.web`) runs in its own thread; what must be durable
— a complaint, a rating — is handed to the agent's loop, written to the
outbox (so it leaves when the link allows, even after a day offline) and
only then confirmed to the citizen with the printed receipt. Content
(notices, guides, places, utilities, request types) is fetched from central
over HTTP in the background and cached on disk, so the kiosk works offline.
Status look-ups and bookings need central and say so when it is away.
Screen, printer and link health go out as telemetry and faults.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import httpx2
import uvicorn

from edge.agent import Agent
from edge.protocol.complaints import new_code
from edge.protocol.messages import NodeConfig
from kiosk.credential import NodeTokenAuth, load_auth
from kiosk.errors import CentralAwayError, CentralRefusedError
from kiosk.printer import PrinterError, ReceiptLines, ReceiptPrinter
from kiosk.settings import KioskSettings
from kiosk.web import create_kiosk_app

if TYPE_CHECKING:
    from pathlib import Path

    from edge.bus import Bus
    from edge.clock import Clock
    from edge.outbox import Outbox
    from edge.settings import NodeSettings

logger = logging.getLogger(__name__)

Job = tuple[str, dict[str, Any], "Future[dict[str, Any]]"]
IN_USE_S = 120.0  # a screen touched this recently is in use
CENTRAL_TIMEOUT_S = 3.0  # a call to central's kiosk API


class KioskAgent(Agent):
    """A citizen kiosk."""

    kind: ClassVar[str] = "kiosk"
    config_model: ClassVar[type[NodeConfig]] = NodeConfig
    settings_model: ClassVar[type[NodeSettings]] = KioskSettings

    def __init__(
        self,
        *,
        settings: NodeSettings,
        bus: Bus,
        outbox: Outbox,
        clock: Clock,
        printer: ReceiptPrinter | None = None,
    ) -> None:
        super().__init__(settings=settings, bus=bus, outbox=outbox, clock=clock)
        self.ks = (
            settings
            if isinstance(settings, KioskSettings)
            else KioskSettings.model_validate(settings.model_dump())
        )
        self.printer = printer or (
            ReceiptPrinter(self.ks.printer_url, baudrate=self.ks.printer_baud)
            if self.ks.printer_url
            else None
        )
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.cache_path: Path = self.ks.data_dir / "content.json"
        self.content: dict[str, Any] = self._load_cache()
        self.central_ok = False
        # Short timeout: a citizen is waiting. No idle connection is kept, so
        # the screen's and the content sync's threads share nothing to close.
        # Every request is signed with the kiosk's fleet certificate: central
        # serves its kiosk API to enrolled kiosks only.
        self.http = httpx2.Client(
            timeout=CENTRAL_TIMEOUT_S,
            limits=httpx2.Limits(max_keepalive_connections=0),
            auth=self._credential(),
        )
        self.printer_state = "none" if self.printer is None else "unknown"
        self.sessions = 0
        self.last_touch = 0.0  # monotonic time of the screen's last request
        self._stop_web = threading.Event()
        self._next_telemetry = 0.0
        self.server: uvicorn.Server | None = None

    def _credential(self) -> NodeTokenAuth | None:
        """The signer of central's kiosk API requests (None: not enrolled)."""
        if self.ks.cert_file is None or self.ks.key_file is None:
            logger.warning(
                "No cert_file/key_file: central will refuse this kiosk's status "
                "look-ups, slots and bookings until it is enrolled"
            )
            return None
        return load_auth(
            device_id=self.ks.device_id,
            cert_file=self.ks.cert_file,
            key_file=self.ks.key_file,
            clock=self.clock,
        )

    # -- content, cached for offline use ----------------------------------------
    def _load_cache(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(
                self.cache_path.read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            return {"items": {}, "services": [], "version": ""}
        return data

    def _central(self, path: str, body: dict[str, Any] | None = None) -> Any:  # noqa: ANN401
        """Call central's kiosk API (short timeout: a citizen is waiting).

        A ``body`` makes it a POST of JSON, else a GET.

        Raises:
            CentralAwayError: central did not answer.
            CentralRefusedError: central answered with an error status.
        """
        url = self.ks.central_url.rstrip("/") + path
        try:
            if body is None:
                resp = self.http.get(url)
            else:
                resp = self.http.post(url, json=body)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            self.central_ok = False
            raise CentralAwayError(f"central unreachable: {exc}") from exc
        self.central_ok = True
        if resp.is_error:
            raise CentralRefusedError(
                f"expected a 2xx answer from {path}, got HTTP {resp.status_code}",
                status=resp.status_code,
            )
        try:
            return resp.json()
        except ValueError as exc:
            msg = f"expected JSON from {path}, got {resp.text[:80]!r}"
            raise CentralRefusedError(msg, status=resp.status_code) from exc

    def sync_content(self) -> bool:
        """Fetch content from central; keep the cache if it cannot."""
        try:
            fresh = self._central("/api/v1/kiosk/content")
        except (CentralAwayError, CentralRefusedError) as exc:
            logger.info("Content not refreshed (%s); using the cache", exc)
            return False
        if fresh != self.content:
            tmp = self.cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(fresh, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self.cache_path)
            self.content = fresh
        return True

    def _content_loop(self) -> None:
        while not self._stop_web.is_set():
            self.sync_content()
            self._stop_web.wait(self.ks.content_every_s)

    # -- what the screen asks (web thread) ----------------------------------------
    def submit(
        self, kind: str, body: dict[str, Any], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Hand a complaint or rating to the agent's loop; wait until it is stored."""
        done: Future[dict[str, Any]] = Future()
        self.jobs.put((kind, body, done))
        return done.result(timeout=timeout)

    def new_complaint(self, fields: dict[str, Any]) -> dict[str, Any]:
        """File a complaint: a code, the outbox, the receipt."""
        body = {
            **fields,
            "code": new_code(),
            "submitted_at": self.clock.now().isoformat(),
        }
        return self.submit("complaint", body)

    def touch(self) -> None:
        """Someone is using the screen (the web app calls this on each page)."""
        self.last_touch = self.clock.monotonic()

    def rate(self, code: str, score: int) -> dict[str, Any]:
        """Record a rating (through the outbox, so it works offline)."""
        body = {
            "code": code.strip().upper(),
            "score": score,
            "at": self.clock.now().isoformat(),
        }
        return self.submit("rating", body)

    def status(self, code: str) -> dict[str, Any]:
        """A complaint's state from central (raises CentralAwayError offline)."""
        result: dict[str, Any] = self._central(
            f"/api/v1/kiosk/status/{code.strip().upper()}"
        )
        return result

    def slots(self, service: str) -> list[dict[str, Any]]:
        """Appointment slots from central."""
        result: list[dict[str, Any]] = self._central(
            f"/api/v1/kiosk/slots?service={service}"
        )
        return result

    def book(self, slot_id: int, name: str, phone: str) -> dict[str, Any]:
        """Book a slot at central."""
        result: dict[str, Any] = self._central(
            "/api/v1/kiosk/bookings", {"slot_id": slot_id, "name": name, "phone": phone}
        )
        return result

    # -- the loop (agent thread) ------------------------------------------------------
    def step(self) -> None:
        """Store and print what the screen handed over; report telemetry."""
        while True:
            try:
                kind, body, done = self.jobs.get_nowait()
            except queue.Empty:
                break
            try:
                done.set_result(self._do(kind, body))
            except Exception as exc:
                logger.exception("Kiosk job %s failed", kind)
                done.set_exception(exc)
        now = self.clock.monotonic()
        if now >= self._next_telemetry:
            self._next_telemetry = now + self.config.telemetry_s
            if self.printer is not None:
                self.printer_state = self.printer.status()
            self.send_telemetry(
                {
                    "screen": "on"
                    if self.server is not None and self.server.started
                    else "off",
                    "sessions": self.sessions,
                    "printer": self.printer_state,
                    "central_http": self.central_ok,
                    "link": self.bus.connected,
                    "outbox_depth": self.outbox.depth,
                }
            )

    def _do(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        self.emit(kind, body, priority=2)  # durable before the citizen is told
        result: dict[str, Any] = {"stored": True, **body}
        if kind == "complaint":
            receipt = self._receipt(body)
            result["printed"] = self._print(receipt)
            result["receipt"] = receipt  # the screen shows a copy of the paper
        return result

    def _receipt(self, body: dict[str, Any]) -> ReceiptLines:
        names = {s["code"]: s["name"] for s in self.content.get("services", [])}
        when = (
            datetime.fromisoformat(body["submitted_at"])
            .astimezone()
            .strftime("%Y-%m-%d %H:%M")
        )
        return ReceiptLines(
            title="数字巴陵 投诉举报回执",
            lines=(
                f"查询码：{body['code']}",
                f"类别：{names.get(body['service_code'], body['service_code'])}",
                f"提交时间：{when}",
                f"信息亭：{self.settings.device_id}",
                "实名" if body.get("real_name") else "匿名",
            ),
            qr=body["code"],
            footer="凭查询码在任意信息亭或12345查询办理进度",
        )

    def _print(self, receipt: ReceiptLines) -> str:
        if self.printer is None:
            return "none"
        try:
            self.printer.print_receipt(receipt)
        except PrinterError as exc:
            self.printer_state = exc.reason
            logger.warning("Receipt not printed: %s", exc)
            return exc.reason
        self.printer_state = "ok"
        return "ok"

    def update_deferral(self) -> str | None:
        """A kiosk never updates while a citizen is using it."""
        if self.last_touch and self.clock.monotonic() - self.last_touch < IN_USE_S:
            return "a citizen is using the kiosk"
        return None

    def faults(self) -> set[str]:
        """Printer without paper or offline; central unreachable."""
        out = set()
        if self.printer_state == "paper_out":
            out.add("printer_paper_out")
        elif self.printer_state == "offline":
            out.add("printer_offline")
        if not self.central_ok:
            out.add("central_unreachable")
        return out

    def run(self, stop: threading.Event) -> None:
        """Serve the screen and the content sync, then run the agent loop."""
        app = create_kiosk_app(self)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host=self.ks.http_host, port=self.ks.http_port, log_level="warning"
            )
        )
        threading.Thread(target=self.server.run, name="kiosk-web", daemon=True).start()
        threading.Thread(
            target=self._content_loop, name="kiosk-content", daemon=True
        ).start()
        try:
            super().run(stop)
        finally:
            self._stop_web.set()
            self.server.should_exit = True
            if self.printer is not None:
                self.printer.close()
