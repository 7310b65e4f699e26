"""Central's side of broker access: its service identities, the ACL, ejecting nodes.

* Service identities: the broker forces client id = certificate name, so
  each of central's connections (the publishing link, each ingest worker)
  presents its own certificate, minted here from central's CA through the
  service path (:meth:`provisioning.ca.FleetCA.issue_service`) that no HTTP
  route reaches, and kept (0600 in a 0700 directory) so a worker's client id
  and persistent session stay the same across restarts.
* The ACL: which node may read which other device's retained state (a
  camera its junction's cabinet), derived from the desired configurations in
  the database and written where the broker reads it; the broker re-reads
  it on SIGHUP, which is :mod:`baling.broker`'s watch or a systemd ``.path``
  unit's business, not this module's.
* Ejecting: every second this watches the registry for newly retired
  devices (retire and replace both set ``retired_at``), so no route has to
  remember to call it. Mosquitto keeps a connected session when the CRL changes, so
  after a retirement central connects *as* the node (a two-minute
  certificate with the node's name, also through central's CA) with a clean
  start, which ends the node's connection and its session; it repeats this
  for a few seconds so a reconnect that slips in before the broker re-reads
  the CRL is ended as well.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session, col, select

from central.fleet.enrolment import write_crl
from central.fleet.policy import desired_config
from central.fleet.twin import current_layers, facts
from central.models import Device
from edge.bus import TlsFiles
from provisioning.brokerconf import write_acl
from provisioning.ca import (
    CAError,
    key_pem,
    make_csr,
    new_key,
    private_dir,
    write_atomically,
)
from provisioning.identity import is_service_name

if TYPE_CHECKING:
    from collections.abc import Iterable

    import sqlalchemy as sa

    from provisioning.ca import FleetCA

logger = logging.getLogger(__name__)

EJECT_CERT_LIFETIME = timedelta(minutes=2)
CRL_REWRITE = timedelta(days=1)
RENEW_BEFORE = timedelta(days=30)
JUNCTION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def service_tls(
    ca: FleetCA, directory: Path, name: str, *, ca_file: Path, now: datetime
) -> TlsFiles:
    """The TLS files of service identity ``name``, minted on first use.

    A certificate that is missing or expires within 30 days is (re)issued;
    the key stays, so nothing else changes for the broker.
    """
    private_dir(directory)
    cert, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    if not _valid_until(cert, now + RENEW_BEFORE):
        key = new_key()
        issued = ca.issue_service(make_csr(key, name), common_name=name, now=now)
        write_atomically(key_path, key_pem(key), secret=True)
        write_atomically(cert, issued.chain_pem)
    return TlsFiles(ca_file=ca_file, cert_file=cert, key_file=key_path)


def _valid_until(cert: Path, when: datetime) -> bool:
    from cryptography import x509  # noqa: PLC0415

    try:
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return False
    return parsed.not_valid_after_utc > when


def junction_problem(session: Session, camera: Device, junction: object) -> str | None:
    """Why ``junction`` may not be ``camera``'s junction, or None when it may.

    A camera may read only a live signal cabinet of its own district, named by
    a plain device id (the name goes into the broker's ACL file verbatim).
    """
    if (
        not isinstance(junction, str)
        or not JUNCTION_ID.fullmatch(junction)
        or is_service_name(junction)
    ):
        return (
            "expected junction to be a node's device id of [a-z0-9_-], "
            f"got {junction!r:.80}"
        )
    cabinet = session.get(Device, junction)
    if (
        cabinet is None
        or cabinet.kind != "signal_controller"
        or cabinet.retired_at is not None
        or cabinet.site != camera.site
    ):
        return (
            f"expected junction to name a signal cabinet in district "
            f"{camera.site!r}, got {junction!r:.80}"
        )
    return None


def camera_reads(session: Session) -> dict[str, list[str]]:
    """Which live camera reads which cabinet's state (its configured junction).

    A junction that is not a live cabinet of the camera's own district (see
    :func:`junction_problem`) is skipped and logged, never written.
    """
    layers = current_layers(session)
    reads: dict[str, list[str]] = {}
    cameras = session.exec(
        select(Device).where(Device.kind == "camera", col(Device.retired_at).is_(None))
    ).all()
    for device in cameras:
        try:
            values = desired_config(layers, facts(device)).values
        except ValueError:  # PolicyError: put_layer refuses these; skip, not crash
            continue
        junction = values.get("junction")
        if not junction:
            continue
        problem = junction_problem(session, device, junction)
        if problem is not None:
            logger.warning("Camera %s: no ACL read grant: %s", device.id, problem)
            continue
        reads[device.id] = [str(junction)]
    return reads


class BrokerAccess:
    """Writes the broker's ACL from the database and ejects retired nodes."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        ca: FleetCA,
        host: str,
        port: int,
        tls_ca_file: Path | None,
        acl_file: Path | None,
        services: Iterable[str],
        crl_file: Path | None = None,
        refresh_s: float = 5.0,
        eject_s: float = 8.0,
    ) -> None:
        self.engine = engine
        self.ca = ca
        self.host, self.port = host, port
        self.tls_ca_file = tls_ca_file
        self.acl_file = acl_file
        self.services = tuple(services)
        self.crl_file = crl_file
        self.refresh_s = refresh_s
        self.eject_s = eject_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retired: set[str] = set()

    # -- the ACL ---------------------------------------------------------------
    def refresh_acl(self) -> bool:
        """Rewrite the ACL if what it should say changed; return whether it did."""
        if self.acl_file is None:
            return False
        with Session(self.engine) as session:
            reads = camera_reads(session)
        changed = write_acl(self.acl_file, self.services, reads=reads)
        if changed:
            logger.info("Broker ACL rewritten (%d node read grants)", len(reads))
        return changed

    def start(self) -> None:
        """Write the ACL now; keep it current and eject newly retired devices."""
        self._retired = self.retired()
        self.refresh_acl()
        self._thread = threading.Thread(
            target=self._run, name="broker-access", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def retired(self) -> set[str]:
        """The ids of every retired device."""
        with Session(self.engine) as session:
            return set(
                session.exec(
                    select(Device.id).where(col(Device.retired_at).is_not(None))
                ).all()
            )

    def _run(self) -> None:
        next_acl = time.monotonic() + self.refresh_s
        while not self._stop.wait(1.0):
            try:
                now_retired = self.retired()
                for device_id in sorted(now_retired - self._retired):
                    self.eject(device_id)
                self._retired = now_retired
            except Exception:
                logger.exception("Broker access watch failed; retrying")
            if time.monotonic() < next_acl:
                continue
            next_acl = time.monotonic() + self.refresh_s
            # Independent steps: a failing ACL must never stop the CRL's renewal.
            for step in (self.refresh_acl, self.refresh_crl):
                try:
                    step()
                except Exception:
                    logger.exception("Broker access %s failed; retrying", step.__name__)

    def refresh_crl(self, *, older_than: timedelta = CRL_REWRITE) -> bool:
        """Re-sign the CRL when it is older than ``older_than``; return whether.

        OpenSSL refuses every client once a CRL's next update has passed
        (seven days after it was signed), so a quiet week without
        retirements must not let it lapse.
        """
        if self.crl_file is None or not self.crl_file.exists():
            return False
        age = time.time() - self.crl_file.stat().st_mtime
        if age < older_than.total_seconds():
            return False
        with Session(self.engine) as session:
            write_crl(session, self.ca, now=datetime.now(UTC), path=self.crl_file)
        logger.info("CRL re-signed (it was %.1f days old)", age / 86400)
        return True

    # -- ejecting --------------------------------------------------------------
    def eject(self, device_id: str) -> threading.Thread:
        """End ``device_id``'s broker session now and for ``eject_s`` seconds.

        Runs in the background (the retirement's HTTP answer does not wait);
        returns the thread so a caller may join it.
        """
        thread = threading.Thread(
            target=self._eject, args=(device_id,), name="eject", daemon=True
        )
        thread.start()
        return thread

    def _eject(self, device_id: str) -> None:
        try:
            context = self._eject_context(device_id)
        except (CAError, OSError, ssl.SSLError):
            logger.exception("Cannot make an identity to eject %s", device_id)
            return
        deadline = time.monotonic() + self.eject_s
        kicks = 0
        while time.monotonic() < deadline and not self._stop.is_set():
            kicks += self._kick(device_id, context)
            time.sleep(0.4)
        logger.info(
            "Ejected %s from the broker (%d session takeovers)", device_id, kicks
        )

    def _eject_context(self, device_id: str) -> ssl.SSLContext | None:
        if self.tls_ca_file is None:
            return None
        now = datetime.now(UTC)
        key = new_key()
        issued = self.ca.issue(
            make_csr(key, device_id),
            common_name=device_id,
            now=now,
            lifetime=EJECT_CERT_LIFETIME,
        )
        context = ssl.create_default_context(cafile=str(self.tls_ca_file))
        context.check_hostname = False
        # load_cert_chain reads files: a private directory, removed at once
        with tempfile.TemporaryDirectory() as tmp:
            folder = private_dir(Path(tmp))
            write_atomically(folder / "k.pem", key_pem(key), secret=True)
            write_atomically(folder / "c.pem", issued.chain_pem, secret=True)
            context.load_cert_chain(folder / "c.pem", folder / "k.pem")
        return context

    def _kick(self, device_id: str, context: ssl.SSLContext | None) -> int:
        """Connect as the device with a clean start (taking over its session)."""
        connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=device_id,
            protocol=mqtt.MQTTv5,
        )
        client.on_connect = lambda _c, _u, _f, rc, _p: (
            connected.set() if not rc.is_failure else None
        )
        if context is not None:
            client.tls_set_context(context)
        try:
            client.connect(self.host, self.port, keepalive=10, clean_start=True)
        except (OSError, ssl.SSLError) as exc:
            logger.warning("Cannot reach the broker to eject %s: %s", device_id, exc)
            return 0
        client.loop_start()
        try:
            return 1 if connected.wait(3) else 0
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
