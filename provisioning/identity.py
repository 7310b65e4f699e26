"""Who may hold which broker identity: node names versus service names (pure).

The broker takes a client's identity from its certificate's common name
(``use_identity_as_username``) and forces the MQTT client id to that name
(``use_username_as_clientid``), so a name *is* a set of broker rights.
Service identities (central's publishing link and its ingest workers) are
named ``central…`` and are issued only through central's own service path
(:meth:`provisioning.ca.FleetCA.issue_service`); enrolment and code creation
refuse every such name here. Issuing and storing certificates is left to
:mod:`provisioning.ca` and :mod:`central.fleet.enrolment`.
"""

from __future__ import annotations

import re

from provisioning.errors import ProvisioningError

# A service identity starts with one of these; a node's may not. "$" names
# are the broker's own, and "+ # /" can never reach here (topics.check_device_id
# allows only [a-z0-9_-]), but the check below refuses them on its own too.
RESERVED_PREFIXES = ("central", "svc-", "svc_", "$")
_NODE_ID = re.compile(r"^[a-z0-9_-]{1,64}$")


class IdentityError(ProvisioningError, ValueError):
    """A name that may not be given to the identity asked for."""


def is_service_name(name: str) -> bool:
    """Whether ``name`` is reserved for central's services."""
    return name.lower().startswith(RESERVED_PREFIXES)


def check_node_identity(name: str) -> str:
    """Return ``name`` if a node may be enrolled under it.

    Raises:
        IdentityError: it is a reserved service name or not a plain device id.
    """
    if is_service_name(name):
        raise IdentityError(
            "expected a node id that is not a reserved service name "
            f"({', '.join(p + '…' for p in RESERVED_PREFIXES)}), got {name!r:.80}"
        )
    if not _NODE_ID.fullmatch(name):
        raise IdentityError(
            "expected a node id of [a-z0-9_-] (1-64 chars, no + # / or "
            f"wildcards), got {name!r:.80}"
        )
    return name


def check_service_identity(name: str) -> str:
    """Return ``name`` if it is a valid service identity (``central…``).

    Raises:
        IdentityError: it does not start with ``central`` or is not a plain id.
    """
    if not name.startswith("central") or not _NODE_ID.fullmatch(name):
        raise IdentityError(
            f"expected a service identity like 'central-ingest-w1-0', got {name!r:.80}"
        )
    return name


def link_identity(worker_id: str) -> str:
    """The broker identity (= client id) of a central process's publishing link."""
    return f"central-api-{worker_id}"


def ingest_identity(worker_id: str, index: int) -> str:
    """The broker identity (= client id) of a process's ingest worker ``index``.

    It stays the same across restarts: the worker's persistent session (and
    the events queued in it) is keyed by it.
    """
    return f"central-ingest-{worker_id}-{index}"


def sos_identity(worker_id: str) -> str:
    """The broker identity (= client id) of a central process's SOS lane.

    Like an ingest worker's, it stays the same across restarts: an SOS
    published while the process is down waits in its persistent session.
    """
    return f"central-sos-{worker_id}"


def service_identities(worker_id: str, workers: int) -> tuple[str, ...]:
    """Every broker identity one central process uses."""
    return (
        link_identity(worker_id),
        *(ingest_identity(worker_id, i) for i in range(workers)),
        sos_identity(worker_id),
    )
