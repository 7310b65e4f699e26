"""Mosquitto configuration for a real deployment: mutual TLS and per-node topic rights.

Each node's certificate common name is its MQTT username
(``use_identity_as_username``), and the ACL lets a node write only below
``bl/v1/<its id>/`` and read only its own ``cmd/#`` and ``config``. Central
has its own service identity with the rights it needs. A revoked node is
refused through the CRL at its next connect (Mosquitto 2.0 reads the CRL at
start, so revocation restarts the broker). Starting the broker is left to
the operator (systemd) or to :mod:`baling.broker`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def acl_text(central_identity: str = CENTRAL_IDENTITY) -> str:
    """The ACL: central reads and writes the tree; each node only its own subtree."""
    return "\n".join(
        [
            "# central's service identity",
            f"user {central_identity}",
            "topic readwrite bl/v1/#",
            "",
            "# every node (certificate CN = username = device id)",
            "pattern write bl/v1/%u/state",
            "pattern write bl/v1/%u/telemetry",
            "pattern write bl/v1/%u/event/#",
            "pattern write bl/v1/%u/reply",
            "pattern read bl/v1/%u/cmd/#",
            "pattern read bl/v1/%u/config",
            "# a camera at a junction reads the cabinet's running phase",
            "pattern read bl/v1/+/state",
            "",
        ]
    )


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
            "",
            *local,
        ]
    )


def write_broker_config(
    directory: Path,
    listener: TlsListener,
    *,
    central_identity: str = CENTRAL_IDENTITY,
    loopback_port: int | None = None,
) -> Path:
    """Write ``mosquitto.conf`` and ``acl`` into ``directory``; return the config."""
    directory.mkdir(parents=True, exist_ok=True)
    acl = directory / "acl"
    acl.write_text(acl_text(central_identity), encoding="utf-8")
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
