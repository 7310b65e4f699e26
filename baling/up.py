"""``baling up``: broker, central and one simulated node of each built kind.

One machine, no configuration: everything lives under the data directory
(SQLite database, broker persistence, node outboxes, the generated JWT
secret and the first operator's password). Ctrl-C stops it all cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import uvicorn
from cryptography import x509
from sqlmodel import Session

from baling.broker import free_port, mosquitto_path
from baling.demo import (
    CAMERA_AT,
    JUNCTION,
    JUNCTION_AT,
    Street,
    camera_spool,
    set_up_complaints,
    set_up_plates,
    set_up_police,
    set_up_signals,
    sos_pin,
    start_receivers,
    start_street,
    start_traffic,
)
from baling.securesite import tls_broker
from central.errors import ConflictError
from central.fleet import registry
from central.main import (
    Central,
    bootstrap_admin,
    default_sqlite_url,
    proxy_options,
)
from central.models import Certificate
from central.settings import CentralSettings
from edge import logs
from edge.ota.client import pin_roots
from edge.protocol.signing import public_key_text
from firmware_sim.printer import PrinterSimulator
from provisioning.ca import key_pem, make_csr, new_key, write_atomically

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    import sqlalchemy as sa

    from central.ota.service import OtaService
    from provisioning.ca import FleetCA

logger = logging.getLogger(__name__)

DEMO_SITE = "rongjiawan"  # 荣家湾, the county seat
# (device id, kind): one of each built kind, and a squad of three officers.
DEMO_NODES = [
    ("sim-1", "sim"),
    ("camera-1", "camera"),
    ("kiosk-1", "kiosk"),
    ("handheld-1", "handheld"),
    ("handheld-2", "handheld"),
    ("handheld-3", "handheld"),
    (JUNCTION, "signal_controller"),
    (f"det-{JUNCTION}-1", "loop_detector"),
    (f"det-{JUNCTION}-2", "loop_detector"),
]


def _secret(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return value


def _node_config(
    data_dir: Path,
    *,
    device_id: str,
    kind: str,
    port: int,
    command_key: str,
    extra: dict[str, str],
) -> Path:
    node_dir = data_dir / "nodes" / device_id
    node_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / "node.toml"
    path.write_text(
        f'device_id = "{device_id}"\nkind = "{kind}"\n'
        f'data_dir = "{node_dir.resolve()}"\n'
        f'broker_host = "127.0.0.1"\nbroker_port = {port}\nheartbeat_s = 10\n'
        f'command_keys = ["{command_key}"]\nrequire_signed_commands = true\n'
        + "".join(
            f"{k} = {v}\n" if v.isdigit() else f'{k} = "{v}"\n'
            for k, v in extra.items()
        ),
        encoding="utf-8",
    )
    return path


def _start_nodes(
    data_dir: Path,
    port: int,
    command_key: str,
    devices: dict[str, str],
    *,
    ota: OtaService,
    street: Street | None,
) -> list[subprocess.Popen[bytes]]:
    """The demo nodes under ``baling supervise`` (so they can take updates).

    Each trusts central's command key and pins the update roots from the
    start, as enrolment would give them.
    """
    nodes = []
    for device_id, kind in DEMO_NODES:
        extra = {  # short health windows, so a demo rollout is watched in a minute
            "ota_url": f"{devices['central_url']}/ota",
            "ota_settle_s": "5",
            "ota_deadline_s": "30",
        }
        if kind == "camera":
            extra["camera_url"] = f"spool:{camera_spool(data_dir)}"
        if kind == "kiosk":
            extra |= {
                "central_url": devices["central_url"],
                "http_port": devices["kiosk_port"],
                "printer_url": devices["printer"],
                # its fleet certificate: central's kiosk API serves enrolled kiosks
                "cert_file": devices["kiosk_cert_file"],
                "key_file": devices["kiosk_key_file"],
            }
        if kind == "handheld":
            extra |= {
                "gnss_url": devices[device_id],
                "sos_button": f"file:{sos_pin(data_dir, device_id)}",
            }
        if kind in ("signal_controller", "loop_detector"):
            if street is None:
                continue  # no SUMO here: no street to watch
            if kind == "signal_controller":
                extra |= {
                    "controller_url": street.controller_url,
                    "junction_file": str(street.junction_file),
                }
            else:
                extra |= {"modbus_url": street.cards[device_id], "baudrate": "115200"}
                extra["parity"] = "N"  # a pty line carries no parity
        anchors = ota.trust_anchors(device_id)
        if anchors is not None:
            pin_roots(data_dir / "nodes" / device_id, *anchors)
        conf = _node_config(
            data_dir,
            device_id=device_id,
            kind=kind,
            port=port,
            command_key=command_key,
            extra=extra,
        )
        nodes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "baling.cli",
                    "supervise",
                    kind,
                    "--config",
                    str(conf),
                ]
            )
        )
    return nodes


def kiosk_credential(
    engine: sa.Engine, ca: FleetCA, *, device_id: str, node_dir: Path, now: datetime
) -> dict[str, str]:
    """The demo kiosk's fleet certificate and key, issued as enrolment issues them.

    The demo's nodes use the loopback listener, so they are not enrolled; a
    kiosk still needs its certificate for central's kiosk API. The fleet CA
    signs the kiosk's CSR and its serial is recorded (a ``Certificate`` row,
    so retiring the kiosk revokes it); a live one from an earlier run is kept.
    Returns the settings' ``cert_file`` and ``key_file``.
    """
    key_file, cert_file = node_dir / "node.key", node_dir / "node.pem"
    files = {"cert_file": str(cert_file), "key_file": str(key_file)}
    with Session(engine) as session:
        if key_file.exists() and cert_file.exists():
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            row = session.get(Certificate, format(cert.serial_number, "x"))
            if (
                row is not None
                and row.revoked_at is None
                and cert.not_valid_after_utc > now + timedelta(days=1)
            ):
                return files
        key = new_key()
        issued = ca.issue(make_csr(key, device_id), common_name=device_id, now=now)
        session.add(
            Certificate(
                serial=format(issued.serial, "x"),
                device_id=device_id,
                issued_at=now,
                not_after=issued.not_after,
            )
        )
        session.commit()
    write_atomically(key_file, key_pem(key), secret=True)
    write_atomically(cert_file, issued.chain_pem)
    return files


def _stop_nodes(nodes: list[subprocess.Popen[bytes]]) -> None:
    for proc in nodes:
        proc.terminate()
    for proc in nodes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _greet(
    host: str,
    port: int,
    data_dir: Path,
    creds: tuple[str, str] | None,
    kiosk_port: int,
    *,
    street: bool,
) -> None:
    print(f"central: http://{host}:{port}/console/   (API: /docs, metrics: /metrics)")
    if creds:
        where = data_dir / "admin-password.txt"
        print(f"login:   {creds[0]} / {creds[1]}   (also in {where})")
    else:
        print(f"login:   admin / see {data_dir / 'admin-password.txt'}")
    print(
        f"kiosk:   http://127.0.0.1:{kiosk_port}/  (the 信息亭 screen; receipts print "
        "on a simulated ESC/POS printer)"
    )
    print(
        "plates:  camera-1 reads the traffic on 建设路; 湘FD4439 (listed as stolen) "
        "passes every third car - see 车牌比对 and 警务指挥"
    )
    print(
        "police:  press an officer's SOS with "
        f"`baling sim press handheld-1 --data-dir {data_dir}`"
    )
    print(
        "updates: 固件升级 publishes a release and rolls it out in waves; a "
        "故障演练 release fails its health check, rolls back and halts the rollout"
    )
    if street:
        print(
            f"signals: SUMO drives traffic through {JUNCTION} (建设路/荣家湾大道) in "
            "real time - 交通信号 shows its flows (after a minute) and live "
            "phase; compute a plan, push it, and watch the cabinet run it"
        )
    print(
        f"nodes:   {', '.join(d for d, _ in DEMO_NODES)} (simulated); "
        "Ctrl-C stops everything"
    )


def _street(data_dir: Path, stop: threading.Event, central: Central) -> Street | None:
    """The demo crossing under SUMO (if SUMO is installed), known to central."""
    try:
        street = start_street(data_dir, stop)
    except ImportError as exc:
        print(f"signals: no SUMO here ({exc}); the demo crossing stays empty")
        return None
    with Session(central.services.engine) as session:
        set_up_signals(session, street)
    return street


def _wait_for_ctrl_c(web: threading.Thread) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if not web.is_alive():
            print("baling up: the web server stopped; shutting down", file=sys.stderr)
            return


def up(
    *,
    data_dir: Path,
    http_port: int,
    host: str = "127.0.0.1",
    traffic_s: float = 8.0,
) -> int:
    """Run everything until Ctrl-C; return the exit status."""
    logs.configure("WARNING")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    plain, tls = free_port(), free_port()
    settings = CentralSettings(
        database_url=default_sqlite_url(data_dir),
        jwt_secret=_secret(data_dir / "jwt-secret"),
        data_dir=data_dir,
        broker_port=plain,
        broker_tls_port=tls,
        broker_acl_file=data_dir / "broker" / "acl",
        http_host=host,
        http_port=http_port,
        ota_release_keys=data_dir
        / "ota-release-keys",  # demo: publish from the console
    )
    if mosquitto_path() is None:
        print(
            "baling up needs Mosquitto, the MQTT broker: install the Debian package"
            " with `sudo apt-get install mosquitto` (scripts/up does), then run"
            " again.",
            file=sys.stderr,
        )
        return 1
    # A plain loopback listener for central and the demo nodes, and the
    # mutual-TLS listener that enrolled nodes use (`baling provision`).
    broker = tls_broker(settings, data_dir, loopback_port=plain)
    broker.start()
    # central rewrites the CRL (retirements) and the ACL; Mosquitto re-reads both
    broker.watch(data_dir / "ca" / "crl.pem", data_dir / "broker" / "acl")
    print(
        f"broker:  Mosquitto ({broker.binary}) on 127.0.0.1:{plain}"
        f" (loopback) and 127.0.0.1:{tls} (mutual TLS, enrolled nodes)"
    )
    central = Central(settings)
    creds = bootstrap_admin(central.services)
    with Session(central.services.engine) as session:
        for device_id, kind in DEMO_NODES:
            with contextlib.suppress(ConflictError):
                lat, lon = {"camera": CAMERA_AT, "signal_controller": JUNCTION_AT}.get(
                    kind, (None, None)
                )
                registry.register(
                    session,
                    device_id=device_id,
                    kind=kind,
                    site=DEMO_SITE,
                    lat=lat,
                    lon=lon,
                    now=central.clock.now(),
                )
        set_up_police(session, now=central.clock.now())
        set_up_plates(session, now=central.clock.now())
        set_up_complaints(session, now=central.clock.now())
    central.start()
    server = uvicorn.Server(
        uvicorn.Config(
            central.app,
            host=host,
            port=http_port,
            log_level="warning",
            **proxy_options(central.settings),
        )
    )
    web = threading.Thread(target=server.run, name="http", daemon=True)
    web.start()
    while not server.started and web.is_alive():  # print the URL once it answers
        time.sleep(0.05)
    stop_sims = threading.Event()
    receivers = start_receivers(stop_sims)
    street = _street(data_dir, stop_sims, central)
    start_traffic(data_dir, stop_sims, every_s=traffic_s)
    printer = PrinterSimulator()
    threading.Thread(target=printer.run, args=(stop_sims,), daemon=True).start()
    kiosk_port = free_port()
    assert central.services.ca is not None  # noqa: S101 - Central loads or makes it
    kiosk_files = kiosk_credential(
        central.services.engine,
        central.services.ca,
        device_id="kiosk-1",
        node_dir=data_dir / "nodes" / "kiosk-1",
        now=central.clock.now(),
    )
    nodes = _start_nodes(
        data_dir,
        broker.port,
        public_key_text(central.command_key.public_key()),
        {
            **{device: pty.path for device, pty in receivers.items()},
            "central_url": f"http://127.0.0.1:{http_port}",
            "kiosk_port": str(kiosk_port),
            "printer": printer.path,
            "kiosk_cert_file": kiosk_files["cert_file"],
            "kiosk_key_file": kiosk_files["key_file"],
        },
        ota=central.ota,
        street=street,
    )
    _greet(host, http_port, data_dir, creds, kiosk_port, street=street is not None)
    _wait_for_ctrl_c(web)
    print("stopping…")
    _stop_nodes(nodes)
    stop_sims.set()
    for pty in receivers.values():
        pty.close()
    printer.close()
    server.should_exit = True
    web.join(timeout=10)
    central.stop()
    broker.stop()
    print("stopped.")
    return 0
