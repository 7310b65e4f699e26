"""The camera agent: frames → plate reads → one signed event per vehicle.

The shell around :mod:`camera_node.reader` (detection and recognition),
:mod:`camera_node.vote` (one read per vehicle over its frames) and
:mod:`camera_node.redlight` (crossings on red). Frames come from a
:class:`~camera_node.capture.FrameSource` at most ``fps`` times a second; a
corrupt frame is counted and raises the fault ``frame_corrupt`` for a while,
a camera that stops delivering raises ``camera_silent`` and is reopened.
When a vehicle has not been seen for ``track_gap_s`` its reads are voted
and a ``plate`` event leaves through the outbox with the plate crop and the
scene as JPEG, sealed (SHA-256, signed) with the node's key. With a
junction configured, the agent follows the cabinet's retained state and
reports red-light crossings as ``violation`` events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import uuid_utils
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from camera_node.capture import CaptureError, FrameSource, open_source
from camera_node.reader import Plate, PlateReader
from camera_node.redlight import LineWatch, Signal
from camera_node.settings import CameraSettings
from camera_node.vote import similar, vote
from edge.agent import Agent
from edge.errors import HardwareError, SettingsError
from edge.protocol import topics
from edge.protocol.evidence import Signer, seal
from edge.protocol.messages import CameraConfig, NodeConfig, to_body
from edge.protocol.plates import Alternative, PlateEventBody, ViolationBody

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from edge.bus import Bus
    from edge.clock import Clock
    from edge.outbox import Outbox
    from edge.protocol.envelope import Envelope
    from edge.settings import NodeSettings

logger = logging.getLogger(__name__)

CORRUPT_FAULT_S = 30.0


@dataclass
class Track:
    """One vehicle being seen: its reads, its best frame, its last frame."""

    plates: list[Plate] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None
    best: tuple[float, np.ndarray | None] = (-1.0, None)  # confidence, frame
    last_frame: np.ndarray | None = None
    last_frame_at: datetime | None = None


def load_signer(settings: CameraSettings) -> tuple[Signer, bytes | None]:
    """The node's evidence key: its fleet certificate's key, else a local Ed25519.

    Raises:
        SettingsError: the configured key cannot be read.
    """
    if settings.key_file is not None and settings.cert_file is not None:
        try:
            key = serialization.load_pem_private_key(
                settings.key_file.read_bytes(), password=None
            )
            cert = x509.load_pem_x509_certificate(settings.cert_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise SettingsError(
                f"cannot load the node key or certificate: {exc}"
            ) from exc
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key, cert.public_bytes(serialization.Encoding.PEM)
    path: Path = settings.data_dir / "evidence.key"
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(loaded, ed25519.Ed25519PrivateKey):
            return loaded, None
    fresh = ed25519.Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        fresh.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return fresh, None


class CameraAgent(Agent):
    """An ANPR camera."""

    kind: ClassVar[str] = "camera"
    config_model: ClassVar[type[NodeConfig]] = CameraConfig
    settings_model: ClassVar[type[NodeSettings]] = CameraSettings

    def __init__(
        self,
        *,
        settings: NodeSettings,
        bus: Bus,
        outbox: Outbox,
        clock: Clock,
        source: FrameSource | None = None,
        reader: PlateReader | None = None,
    ) -> None:
        super().__init__(settings=settings, bus=bus, outbox=outbox, clock=clock)
        self.cam = (
            settings
            if isinstance(settings, CameraSettings)
            else CameraSettings.model_validate(settings.model_dump())
        )
        self.reader = reader or PlateReader(threads=self.cam.threads)
        self.signer, self.cert_pem = load_signer(self.cam)
        self._source = source
        self._reopen_at = 0.0
        self._next_frame = 0.0
        self._last_frame_mono = clock.monotonic()
        self._corrupt_until = 0.0
        self.corrupt = 0
        self.frames = 0
        self.tracks: list[Track] = []
        self.signal: Signal | None = None
        self._line: LineWatch | None = None

    @property
    def cfg(self) -> CameraConfig:
        """The configuration in force, typed."""
        assert isinstance(self.config, CameraConfig)  # noqa: S101 - config_model
        return self.config

    def apply_config(self, config: NodeConfig) -> None:
        """Follow the configured junction's state for red-light capture."""
        assert isinstance(config, CameraConfig)  # noqa: S101 - config_model
        if config.junction:
            self.bus.subscribe(topics.state(config.junction))
        self._line = (
            LineWatch(stop_line_y=config.stop_line_y)
            if config.stop_line_y is not None
            else None
        )

    def observe(self, topic: topics.Topic, env: Envelope) -> None:
        """The junction cabinet's retained state: the lane's signal group."""
        if topic.channel != "state" or topic.device != self.cfg.junction:
            return
        groups = env.body.get("detail", {}).get("signal", {}).get("groups", {})
        group = groups.get(self.cfg.signal_group) if isinstance(groups, dict) else None
        if not isinstance(group, dict) or "state" not in group:
            return
        since_raw = group.get("since")
        since = (
            datetime.fromisoformat(since_raw) if isinstance(since_raw, str) else env.ts
        )
        if self.signal is None or self.signal.state != group["state"]:
            self.signal = Signal(state=str(group["state"]), since=since)

    def faults(self) -> set[str]:
        """Camera silent, corrupt frames lately, camera not open."""
        now = self.clock.monotonic()
        out = set()
        if now - self._last_frame_mono > self.cfg.silent_s:
            out.add("camera_silent")
        if now < self._corrupt_until:
            out.add("frame_corrupt")
        return out

    # -- the loop ------------------------------------------------------------------
    def step(self) -> None:
        """Read at most one frame (rate-limited), then close finished tracks."""
        now = self.clock.monotonic()
        if now >= self._next_frame:
            self._next_frame = now + 1.0 / self.cfg.fps
            frame = self._grab()
            if frame is not None:
                self.process(frame)
        self._close_tracks()

    def _grab(self) -> np.ndarray | None:
        now = self.clock.monotonic()
        if self._source is None:
            if now < self._reopen_at:
                return None
            try:
                self._source = open_source(self.cam.camera_url)
            except (HardwareError, OSError) as exc:
                self._reopen_at = now + 5.0
                logger.warning("Cannot open camera %s: %s", self.cam.camera_url, exc)
                return None
        try:
            frame = self._source.read()
        except CaptureError as exc:
            self.corrupt += 1
            self._corrupt_until = now + CORRUPT_FAULT_S
            logger.warning("Dropped a frame: %s", exc)
            return None
        except OSError as exc:
            logger.warning("Camera failed, reopening: %s", exc)
            self._source.close()
            self._source = None
            return None
        if frame is None:
            if (
                now - self._last_frame_mono > self.cfg.silent_s
                and self._source is not None
            ):
                self._source.close()  # reopen: a stalled stream often recovers
                self._source = None
            return None
        self._last_frame_mono = now
        return frame

    def process(self, frame: np.ndarray) -> None:
        """Read the plates in one frame and add them to their vehicles' tracks."""
        self.frames += 1
        at = self.clock.now()
        for plate in self.reader.read(frame):
            if plate.read.confidence < self.cfg.min_confidence:
                continue
            track = next(
                (
                    t
                    for t in self.tracks
                    if any(similar(plate.read.text, p.read.text) for p in t.plates[-3:])
                ),
                None,
            )
            if track is None:
                track = Track(first_at=at)
                self.tracks.append(track)
            track.plates.append(plate)
            track.last_at = at
            if plate.read.confidence > track.best[0]:
                track.best = (plate.read.confidence, frame)
            if self._line is not None:
                crossing = self._line.observe(
                    plate.read.text, plate.box[3], at, self.signal
                )
                if crossing is not None and track.last_frame is not None:
                    self._violation(plate, track, frame, at, crossing.red_since)
            track.last_frame, track.last_frame_at = frame, at

    # -- events ----------------------------------------------------------------------
    def _jpeg(self, image: np.ndarray, *, width: int | None = None) -> bytes:
        if width is not None and image.shape[1] > width:
            scale = width / image.shape[1]
            image = cv2.resize(
                image,
                (width, int(image.shape[0] * scale)),
                interpolation=cv2.INTER_AREA,
            )
        ok, data = cv2.imencode(
            ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.cfg.jpeg_quality]
        )
        if not ok:  # pragma: no cover - OpenCV encodes any BGR array
            raise HardwareError("JPEG encoding failed")
        return bytes(data)

    def _close_tracks(self) -> None:
        cutoff = self.clock.now() - timedelta(seconds=self.cfg.track_gap_s)
        done = [t for t in self.tracks if t.last_at is not None and t.last_at < cutoff]
        for track in done:
            self.tracks.remove(track)
            self._report(track)
        if self._line is not None:
            self._line.forget_before(cutoff - timedelta(seconds=30))

    def _report(self, track: Track) -> None:
        read = vote([p.read for p in track.plates])
        best_plate = max(track.plates, key=lambda p: p.read.confidence)
        scene = track.best[1]
        images = {"plate": self._jpeg(best_plate.crop)}
        if scene is not None:
            images["scene"] = self._jpeg(scene, width=self.cfg.scene_width)
        assert track.first_at is not None  # noqa: S101 - set with the first read
        facts: dict[str, Any] = {
            "device": self.settings.device_id,
            "text": read.text,
            "confidence": round(read.confidence, 4),
            "seen_at": track.first_at.isoformat(),
            "frames": len(track.plates),
        }
        body = PlateEventBody(
            read_id=str(uuid_utils.uuid7()),
            text=read.text,
            confidence=round(read.confidence, 4),
            alternatives=[
                Alternative(text=t, confidence=round(min(c, 1.0), 4))
                for t, c in read.alternatives
            ],
            colour=best_plate.colour,
            seen_at=track.first_at,
            frames=len(track.plates),
            box=[round(v, 1) for v in best_plate.box],
            evidence=seal(images, facts, key=self.signer, cert_pem=self.cert_pem),
        )
        self.emit("plate", to_body(body))
        logger.info(
            "Plate %s (%.2f, %d frames)", read.text, read.confidence, len(track.plates)
        )

    def _violation(
        self,
        plate: Plate,
        track: Track,
        frame: np.ndarray,
        at: datetime,
        red_since: datetime,
    ) -> None:
        assert track.last_frame is not None  # noqa: S101 - checked by the caller
        assert track.last_frame_at is not None  # noqa: S101
        images = {
            "before": self._jpeg(track.last_frame, width=self.cfg.scene_width),
            "at_line": self._jpeg(frame, width=self.cfg.scene_width),
            "plate": self._jpeg(plate.crop),
        }
        facts: dict[str, Any] = {
            "device": self.settings.device_id,
            "text": plate.read.text,
            "junction": self.cfg.junction,
            "signal_group": self.cfg.signal_group,
            "phase": "red",
            "red_since": red_since.isoformat(),
            "before_at": track.last_frame_at.isoformat(),
            "crossed_at": at.isoformat(),
            "stop_line_y": self.cfg.stop_line_y,
        }
        body = ViolationBody(
            violation_id=str(uuid_utils.uuid7()),
            text=plate.read.text,
            confidence=round(plate.read.confidence, 4),
            junction=self.cfg.junction,
            signal_group=self.cfg.signal_group,
            red_since=red_since,
            crossed_at=at,
            evidence=seal(images, facts, key=self.signer, cert_pem=self.cert_pem),
        )
        self.emit("violation", to_body(body))
        logger.warning(
            "Red-light crossing by %s at %s", plate.read.text, self.cfg.junction
        )

    def _shutdown(self) -> None:
        for track in list(self.tracks):  # what was seen is reported, not lost
            self.tracks.remove(track)
            self._report(track)
        super()._shutdown()
        if self._source is not None:
            self._source.close()
