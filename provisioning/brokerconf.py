"""Mosquitto configuration for a real deployment: mutual TLS and per-node topic rights.

Each client's certificate common name is its MQTT username
(``use_identity_as_username``) *and* its client id
(``use_username_as_clientid``), so a certificate can only ever open its own
session: a node cannot take central's client id, or another node's. The
ACL lets a node write only below ``bl/v1/<its id>/`` and read only its own
``cmd/#`` and ``config``; a node that needs another's retained state (a
camera its junction's cabinet) gets a ``user`` block naming exactly that
topic. Central's service identities (``central-api-…``,
``central-ingest-…``, issued only by central) read and write the tree.
A revoked node is refused once Mosquitto re-reads the CRL (SIGHUP, which
also re-reads this ACL); kicking a connected session and sending the
signal are :mod:`central.fleet.broker_access`'s and :mod:`baling.broker`'s.
Starting the broker is left to the operator (systemd) or to
:mod:`baling.broker`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioning.ca import write_atomically
from provisioning.identity import check_node_identity

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

CENTRAL_IDENTITY = "central"


@dataclass(frozen=True, slots=True)
class TlsListener:
    """Files and address of the mutual-TLS listener."""

    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path
    crl_file: Path
    host: str = "0.0.0.0"  # noqa: S104 - the broker serves the county's nodes


def acl_text(
    services: Iterable[str] = (CENTRAL_IDENTITY,),
    *,
    reads: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """The ACL: services read and write the tree; each node only its own subtree.

    Args:
        services: central's broker identities.
        reads: node id → the devices whose retained ``state`` it may read
            (a camera → its junction's cabinet).

    Raises:
        IdentityError: a node or device name in ``reads`` is not a node id.
    """
    lines = ["# central's service identities (issued by central only)"]
    for name in sorted(set(services)):
        lines += [f"user {name}", "topic readwrite bl/v1/#", ""]
    for node, devices in sorted((reads or {}).items()):
        check_node_identity(node)
        wanted = sorted({check_node_identity(d) for d in devices})
        if wanted:
            lines.append(f"user {node}")
            lines += [f"topic read bl/v1/{d}/state" for d in wanted]
            lines.append("")
    lines += [
        "# every node (certificate CN = username = client id = device id)",
        "pattern write bl/v1/%u/state",
        "pattern write bl/v1/%u/telemetry",
        "pattern write bl/v1/%u/event/#",
        "pattern write bl/v1/%u/sos",  # a handheld's SOS lane (its own topic)
        "pattern write bl/v1/%u/reply",
        "pattern read bl/v1/%u/cmd/#",
        "pattern read bl/v1/%u/config",
        "",
    ]
    return "\n".join(lines)


def write_acl(
    path: Path,
    services: Iterable[str] = (CENTRAL_IDENTITY,),
    *,
    reads: Mapping[str, Iterable[str]] | None = None,
) -> bool:
    """Write the ACL atomically if it changed; return whether it did."""
    text = acl_text(services, reads=reads)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomically(path, text.encode())
    return True


def config_text(
    listener: TlsListener,
    *,
    acl_file: Path,
    persistence_dir: Path,
    loopback_port: int | None = None,
) -> str:
    """A complete ``mosquitto.conf`` for the mutual-TLS listener.

    ``loopback_port`` adds a plain listener on 127.0.0.1 for central on the
    same host (or a demo); nodes never reach it.
    """
    user = ["user root"] if os.geteuid() == 0 else []
    local = (
        [f"listener {loopback_port} 127.0.0.1", "allow_anonymous true", ""]
        if loopback_port
        else []
    )
    return "\n".join(
        [
            *user,
            "per_listener_settings true",
            "persistence true",
            f"persistence_location {persistence_dir}/",
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
            f"listener {listener.port} {listener.host}",
            "allow_anonymous false",
            f"acl_file {acl_file}",
            f"cafile {listener.ca_file}",
            f"certfile {listener.cert_file}",
            f"keyfile {listener.key_file}",
            f"crlfile {listener.crl_file}",
            "require_certificate true",
            "use_identity_as_username true",
            # the client id is the certificate's name: no session takeover
            "use_username_as_clientid true",
            "",
            *local,
        ]
    )


def write_broker_config(
    directory: Path,
    listener: TlsListener,
    *,
    services: Iterable[str] = (CENTRAL_IDENTITY,),
    loopback_port: int | None = None,
) -> Path:
    """Write ``mosquitto.conf`` and ``acl`` into ``directory``; return the config."""
    directory.mkdir(parents=True, exist_ok=True)
    acl = directory / "acl"
    write_acl(acl, services)
    conf = directory / "mosquitto.conf"
    conf.write_text(
        config_text(
            listener,
            acl_file=acl,
            persistence_dir=directory / "persist",
            loopback_port=loopback_port,
        ),
        encoding="utf-8",
    )
    (directory / "persist").mkdir(exist_ok=True)
    return conf
