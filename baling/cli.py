"""``baling``: one command for every part of Baling.

baling up                         the whole system on one machine
baling central                    central alone (settings from CENTRAL_*)
baling node KIND --config FILE    one node
baling supervise KIND --config F  one node, restarted into updated releases (OTA)
baling sim eventnode --config F   a simulated node (load and demo)
baling gnss check FILE-or-URL     qualify a GNSS receiver from a capture or a live port
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

from baling.settings import CentralFiles, OperatorSecrets, given
from edge import logs
from edge.errors import SettingsError
from edge.protocol.kinds import REGISTRY

logger = logging.getLogger(__name__)

# The agent each kind runs, from the one registry of kinds.
NODE_KINDS: dict[str, str] = {code: spec.agent for code, spec in REGISTRY.items()}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="baling", description="Baling (巴陵) device platform"
    )
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="run broker, central and simulated nodes on this machine"
    )
    up.add_argument("--data-dir", type=Path, default=Path("data"))
    up.add_argument("--http-port", type=int, default=8000)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument(
        "--traffic-s",
        type=float,
        default=8.0,
        help="seconds between vehicles past the demo camera",
    )
    sub.add_parser("central", help="run central (settings from CENTRAL_* variables)")
    prov = sub.add_parser("provision", help="enrol nodes")
    prov_sub = prov.add_subparsers(dest="action", required=True)
    enr = prov_sub.add_parser("enroll", help="enrol this node with a one-time code")
    enr.add_argument("--central", required=True, help="central's URL, http://host:8000")
    enr.add_argument("--code", required=True)
    enr.add_argument("--data-dir", type=Path, default=Path("/var/lib/baling"))
    for name, text in [
        ("code", "a one-time enrolment code"),
        ("retire", "retire a node"),
        ("replace", "hand a node's place to its successor"),
    ]:
        tech = prov_sub.add_parser(name, help=text)
        tech.add_argument("--central", required=True)
        tech.add_argument(
            "--user", required=True, help="password from BALING_PASSWORD or asked"
        )
        if name == "code":
            tech.add_argument("--kind", required=True)
            tech.add_argument("--site", default="")
            tech.add_argument("--ttl-h", type=float, default=24.0)
        elif name == "retire":
            tech.add_argument("device")
        else:
            tech.add_argument("old")
            tech.add_argument("new")
    bc = prov_sub.add_parser(
        "broker-config", help="write a mutual-TLS Mosquitto config"
    )
    bc.add_argument("--dir", type=Path, required=True)
    bc.add_argument("--port", type=int, default=8883)
    bc.add_argument("--ca-file", type=Path, required=True)
    bc.add_argument("--cert-file", type=Path, required=True)
    bc.add_argument("--key-file", type=Path, required=True)
    bc.add_argument("--crl-file", type=Path, required=True)
    bc.add_argument(
        "--service",
        action="append",
        default=None,
        help="a central service identity the ACL lets in (repeat; default: "
        "central-api-w1 and central-ingest-w1-0)",
    )
    _ca_parsers(sub)
    _release_parsers(sub)
    back = sub.add_parser("backup", help="back up central (CENTRAL_* settings)")
    back.add_argument("--out", type=Path, required=True)
    rest = sub.add_parser("restore", help="restore central into an empty database")
    rest.add_argument("archive", type=Path)
    audit = sub.add_parser("audit", help="the audit log (CENTRAL_* settings)")
    audit.add_argument("what", choices=["verify"])
    _node_parsers(sub)
    _gnss_parsers(sub)
    return p


def _gnss_parsers(sub: Any) -> None:  # noqa: ANN401 - argparse's private type
    gnss = sub.add_parser("gnss", help="GNSS receiver tools")
    gnss_sub = gnss.add_subparsers(dest="action", required=True)
    chk = gnss_sub.add_parser(
        "check", help="read a capture file or a serial URL; list fixes and refusals"
    )
    chk.add_argument(
        "source", help="a capture file, or a port: /dev/ttyUSB0, socket://"
    )
    chk.add_argument("--json", action="store_true", help="one JSON object per line")
    chk.add_argument("--baud", type=int, default=9600, help="a port's baud rate")
    chk.add_argument(
        "--seconds", type=float, default=60.0, help="how long to read a live port"
    )


def _release_parsers(sub: Any) -> None:  # noqa: ANN401 - argparse's private type
    rel = sub.add_parser("release", help="build and publish node releases (OTA)")
    rel_sub = rel.add_subparsers(dest="action", required=True)
    rb = rel_sub.add_parser("build", help="pack a node kind's release")
    rb.add_argument("--kind", required=True)
    rb.add_argument("--version", required=True)
    rb.add_argument("--min-from", default="0.0.0")
    rb.add_argument("--out", type=Path, default=Path("dist"))
    rb.add_argument(
        "--drill",
        action="store_true",
        help="a fault-drill release: nodes fail its health check and roll back",
    )
    rp = rel_sub.add_parser("publish", help="sign a release into the image repository")
    rp.add_argument("archive", type=Path)
    rp.add_argument("--repo", type=Path, required=True, help="the image repository")
    rp.add_argument("--offline-keys", type=Path, required=True)
    rp.add_argument("--online-keys", type=Path, required=True)


def _node_parsers(sub: Any) -> None:  # noqa: ANN401 - argparse's private type
    node = sub.add_parser("node", help="run one node")
    node.add_argument("kind")
    node.add_argument("--config", type=Path, required=True)
    sup = sub.add_parser(
        "supervise", help="run one node from its OTA slot, restarting it after updates"
    )
    sup.add_argument("kind")
    sup.add_argument("--config", type=Path, required=True)
    sup.add_argument(
        "--slots", type=Path, help="the A/B slots (default: <data_dir>/release)"
    )
    sim = sub.add_parser("sim", help="run a simulator")
    sim.add_argument("what", choices=["eventnode", "press"])
    sim.add_argument(
        "device", nargs="?", help="press: the demo handheld whose SOS is pressed"
    )
    sim.add_argument("--config", type=Path, help="eventnode: the node's settings")
    sim.add_argument("--data-dir", type=Path, default=Path("data"))
    sim.add_argument("--hold", type=float, default=2.5, help="press: seconds held")
    sim.add_argument(
        "--total", type=int, default=0, help="emit this many events, then idle"
    )
    sim.add_argument(
        "--pad", type=int, default=0, help="bytes of padding per event body"
    )


def run_node(kind: str, config: Path, **extra: Any) -> int:  # noqa: ANN401
    """Run a node of ``kind`` from a TOML settings file."""
    from edge.node import build_agent, run_agent  # noqa: PLC0415
    from edge.settings import load_settings  # noqa: PLC0415

    target = NODE_KINDS.get(kind)
    if target is None:
        print(
            f"baling: unknown node kind {kind!r}; built: {sorted(NODE_KINDS)}",
            file=sys.stderr,
        )
        return 2
    module, _, name = target.partition(":")
    agent_cls = getattr(importlib.import_module(module), name)
    try:
        settings = load_settings(agent_cls.settings_model, config, kind=kind)
    except SettingsError as exc:
        print(f"baling: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    agent = build_agent(agent_cls, settings, **extra)
    run_agent(agent)
    code: int = agent.exit_code
    return code


def supervise_node(kind: str, config: Path, slots: Path | None) -> int:
    """Run a node under the OTA supervisor until SIGTERM/SIGINT."""
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from edge.clock import SystemClock  # noqa: PLC0415
    from edge.ota.supervisor import supervise  # noqa: PLC0415

    if kind not in NODE_KINDS:
        print(f"baling: unknown node kind {kind!r}", file=sys.stderr)
        return 2
    try:
        values = tomllib.loads(config.read_text(encoding="utf-8"))
        data_dir = Path(values["data_dir"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"baling supervise: no data_dir in {config}: {exc}", file=sys.stderr)
        return 2
    logs.configure()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # -P: the working directory must not shadow the slot's packages
    command = [sys.executable, "-P", "-m", "baling.cli", "node", kind]
    command += ["--config", str(config.resolve())]
    return supervise(
        command,
        slots_dir=(slots or data_dir / "release").resolve(),
        clock=SystemClock(),
        stop=stop,
    )


def audit_verify(files: CentralFiles) -> int:
    """Verify the audit chain named by CENTRAL_DATABASE_URL; 1 names the bad record."""
    from central.audit.log import load_or_create_key, verify_stored  # noqa: PLC0415
    from central.db import make_engine  # noqa: PLC0415

    url = files.database_url
    if not url:
        print("baling audit: set CENTRAL_DATABASE_URL", file=sys.stderr)
        return 2
    finding = verify_stored(make_engine(url), load_or_create_key(files.data_dir))
    if finding is None:
        print("audit log intact")
        return 0
    print(f"audit log broken at {finding}")
    return 1


def _up(args: argparse.Namespace) -> int:
    from baling.up import up  # noqa: PLC0415 - central's deps load only when needed

    return up(
        data_dir=args.data_dir,
        http_port=args.http_port,
        host=args.host,
        traffic_s=args.traffic_s,
    )


def _central(_args: argparse.Namespace) -> int:
    from pydantic import ValidationError  # noqa: PLC0415

    from central.main import Central, bootstrap_admin  # noqa: PLC0415
    from central.settings import CentralSettings  # noqa: PLC0415

    logs.configure()
    try:
        settings = CentralSettings()  # type: ignore[call-arg]
    except ValidationError as exc:
        print(f"baling central: bad CENTRAL_* settings: {exc}", file=sys.stderr)
        return 2
    central = Central(settings)
    bootstrap_admin(central.services)
    central.serve()
    return 0


def _provision(args: argparse.Namespace) -> int:
    from provisioning.enroll import EnrolError, enroll  # noqa: PLC0415

    if args.action == "broker-config":
        from provisioning.brokerconf import TlsListener, write_broker_config  # noqa: PLC0415

        listener = TlsListener(
            port=args.port,
            ca_file=args.ca_file.resolve(),
            cert_file=args.cert_file.resolve(),
            key_file=args.key_file.resolve(),
            crl_file=args.crl_file.resolve(),
        )
        from provisioning.identity import service_identities  # noqa: PLC0415

        services = args.service or service_identities("w1", 1)
        conf = write_broker_config(args.dir.resolve(), listener, services=services)
        print(f"wrote {conf}")
        return 0
    try:
        if args.action == "enroll":
            enroll(args.central, args.code, args.data_dir.resolve())
        else:
            print(json.dumps(_technician(args), ensure_ascii=False, indent=2))
    except EnrolError as exc:
        print(f"provision {args.action} stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def _technician(args: argparse.Namespace) -> dict[str, Any]:
    import getpass  # noqa: PLC0415

    from provisioning.technician import Technician  # noqa: PLC0415

    secrets: OperatorSecrets = args.secrets
    password = given(secrets.password) or getpass.getpass("password: ")
    tech = Technician(args.central, args.user, password)
    if args.action == "code":
        answer = tech.code(kind=args.kind, site=args.site, ttl_h=args.ttl_h)
        answer.pop("qr_svg", None)  # the console shows the QR code
        return answer
    if args.action == "retire":
        return tech.retire(args.device)
    return tech.replace(args.old, args.new)


def _backup_or_restore(args: argparse.Namespace) -> int:
    from central.backup import backup, restore  # noqa: PLC0415
    from central.db import make_engine  # noqa: PLC0415
    from central.errors import ConflictError  # noqa: PLC0415

    files: CentralFiles = args.central_files
    url = files.database_url
    if not url:
        print(f"baling {args.command}: set CENTRAL_DATABASE_URL", file=sys.stderr)
        return 2
    data_dir = files.data_dir
    engine = make_engine(url)
    try:
        if args.command == "backup":
            counts = backup(engine, data_dir, args.out)
        else:
            counts = restore(engine, data_dir, args.archive)
    except ConflictError as exc:
        print(f"baling restore: {exc}", file=sys.stderr)
        return 1
    rows = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    print(f"{args.command}: {rows or 'no rows'}")
    return 0


def _sim(args: argparse.Namespace) -> int:
    if args.what == "press":
        from baling.demo import sos_pin  # noqa: PLC0415
        from firmware_sim.sospin import press  # noqa: PLC0415

        if not args.device:
            print(
                "baling sim press: name the handheld, e.g. handheld-1", file=sys.stderr
            )
            return 2
        pin = sos_pin(args.data_dir.resolve(), args.device)
        if not pin.parent.is_dir():
            print(f"baling sim press: no demo node at {pin.parent}", file=sys.stderr)
            return 2
        press(pin, args.hold)
        print(f"SOS button of {args.device} held for {args.hold} s")
        return 0
    if args.config is None:
        print("baling sim eventnode: --config is required", file=sys.stderr)
        return 2
    return run_node("sim", args.config, total=args.total, pad=args.pad)


def _release(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from central.ota.release import build, publish  # noqa: PLC0415

    if args.action == "build":
        try:
            path = build(
                args.kind,
                args.version,
                min_from=args.min_from,
                out=args.out,
                drill=args.drill,
            )
        except ValueError as exc:
            print(f"baling release: {exc}", file=sys.stderr)
            return 2
        print(f"built {path}")
        return 0
    name = publish(
        args.archive,
        repo_dir=args.repo,
        offline=args.offline_keys,
        online=args.online_keys,
        now=datetime.now(UTC),
    )
    print(f"published {name} into {args.repo}")
    return 0


def _gnss(args: argparse.Namespace) -> int:
    from handheld.check import run_check  # noqa: PLC0415

    return run_check(
        args.source, as_json=args.json, baud=args.baud, seconds=args.seconds
    )


def _ca_parsers(sub: Any) -> None:  # noqa: ANN401 - argparse's private type
    ca = sub.add_parser("ca", help="the fleet CA's offline root (docs/security.md)")
    ca_sub = ca.add_subparsers(dest="action", required=True)
    init = ca_sub.add_parser(
        "init", help="make the root on an offline medium (BALING_CA_ROOT_PASSPHRASE)"
    )
    init.add_argument("--root-dir", type=Path, required=True)
    inter = ca_sub.add_parser(
        "intermediate",
        help="sign central's online issuing CA with the offline root",
    )
    inter.add_argument("--root-dir", type=Path, required=True)
    inter.add_argument(
        "--out", type=Path, required=True, help="central's <data_dir>/ca"
    )
    server = ca_sub.add_parser(
        "server",
        help="a TLS server certificate (broker, /ota) from central's issuing CA",
    )
    server.add_argument("--ca-dir", type=Path, required=True, help="<data_dir>/ca")
    server.add_argument("--host", action="append", required=True)
    server.add_argument("--out", type=Path, required=True, help="writes OUT.pem/.key")


def _ca(args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from provisioning.ca import CAError, create_root, issue_intermediate  # noqa: PLC0415

    files: CentralFiles = args.central_files
    secrets: OperatorSecrets = args.secrets
    issuing = files.issuing_passphrase()
    now = datetime.now(UTC)
    if args.action == "server":
        return _ca_server(args, issuing)
    phrase = given(secrets.ca_root_passphrase) or getpass.getpass("root passphrase: ")
    try:
        if args.action == "init":
            create_root(args.root_dir, now=now, passphrase=phrase.encode())
            print(f"root written to {args.root_dir} (root.key encrypted, root.pem)")
        else:
            issue_intermediate(
                args.root_dir,
                args.out,
                now=now,
                passphrase=phrase.encode(),
                issuing_passphrase=issuing,
            )
            print(f"issuing CA written to {args.out}; restart central to use it")
    except CAError as exc:
        print(f"ca {args.action} stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def _ca_server(args: argparse.Namespace, passphrase: bytes | None) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from provisioning.ca import (  # noqa: PLC0415
        CAError,
        FleetCA,
        key_pem,
        make_csr,
        new_key,
        write_atomically,
    )

    try:
        ca = FleetCA.load(args.ca_dir, passphrase=passphrase)
    except CAError as exc:
        print(f"ca server stopped: {exc}", file=sys.stderr)
        return 1
    key = new_key()
    name, *more = args.host
    issued = ca.issue(
        make_csr(key, name),
        common_name=name,
        now=datetime.now(UTC),
        server=True,
        hosts=tuple(more),
    )
    out: Path = args.out
    write_atomically(out.with_suffix(".key"), key_pem(key), secret=True)
    write_atomically(out.with_suffix(".pem"), issued.chain_pem)
    print(f"wrote {out.with_suffix('.pem')} and {out.with_suffix('.key')} (0600)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``baling`` command."""
    args = _parser().parse_args(argv)
    # The environment is read here, once, and handed down with the arguments.
    args.central_files = CentralFiles()
    args.secrets = OperatorSecrets()
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "up": _up,
        "central": _central,
        "provision": _provision,
        "ca": _ca,
        "audit": lambda a: audit_verify(a.central_files),
        "backup": _backup_or_restore,
        "restore": _backup_or_restore,
        "node": lambda a: run_node(a.kind, a.config),
        "supervise": lambda a: supervise_node(a.kind, a.config, a.slots),
        "sim": _sim,
        "release": _release,
        "gnss": _gnss,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
