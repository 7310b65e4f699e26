"""``baling provision enroll``: what a technician runs on the node.

It asks central who the code will enrol, makes the node's key locally (it
never leaves the node), sends a CSR, and writes the certificate chain, the
CA bundle and a complete ``node.toml`` atomically into the data directory.
Every step is printed; every failure says what to do. HTTP is httpx's (the
one client of nodes and central); its errors become :class:`EnrolError`
here. The TOML is tomli-w's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx2
import tomli_w

from provisioning.ca import key_pem, make_csr, new_key, private_dir, write_atomically
from provisioning.errors import ProvisioningError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


TIMEOUT_S = 15.0


class EnrolError(ProvisioningError, RuntimeError):
    """Enrolment stopped; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Result:
    """Where the enrolled node's files are."""

    device_id: str
    config: Path


def call(
    url: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One JSON request to central; failures become :class:`EnrolError` with advice.

    A ``body`` or ``form`` makes it a POST (JSON or form-encoded), else a GET.

    Raises:
        EnrolError: central refused (its ``detail`` as the message), answered
            something that is not a JSON object, or could not be reached.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        if body is None and form is None:
            resp = httpx2.get(url, headers=headers, timeout=TIMEOUT_S)
        else:
            resp = httpx2.post(
                url,
                json=body if form is None else None,
                data=form,
                headers=headers,
                timeout=TIMEOUT_S,
            )
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise EnrolError(
            f"central is unreachable at {url.split('/api/', maxsplit=1)[0]} ({exc}); "
            "check the address, the cable or the modem, and try again"
        ) from exc
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if resp.is_error:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        message = detail.get("message") if isinstance(detail, dict) else detail
        raise EnrolError(str(message or f"central answered HTTP {resp.status_code}"))
    if not isinstance(answer, dict):
        raise EnrolError(
            f"expected a JSON object from central at {url}, got {resp.text[:80]!r}"
        )
    return answer


def enroll(
    central: str,
    code: str,
    data_dir: Path,
    *,
    say: Callable[[str], None] = print,
    now: datetime | None = None,
    check_broker: bool = True,
) -> Result:
    """Enrol this node with ``code``; return where its settings were written.

    Raises:
        EnrolError: with what to do (wrong, used or expired code; clock off;
            central unreachable).
    """
    base = central.rstrip("/") + "/api/v1/enrolment/" + code.strip()
    say(f"1/4 asking {central} about code {code.strip()} …")
    who = call(base)
    device_id = str(who["device_id"])
    say(f"    this node will be {device_id} ({who['kind']}, site {who['site'] or '-'})")
    say("2/4 making this node's key (it never leaves the node) …")
    private_dir(data_dir)  # key, outbox, settings: the node's alone
    key = new_key()
    say("3/4 sending the certificate request …")
    answer = call(
        base,
        {
            "csr": make_csr(key, device_id).decode(),
            "client_time": (now or datetime.now(UTC)).isoformat(),
        },
    )
    say("4/4 writing certificate, CA bundle and settings …")
    write_atomically(data_dir / "node.key", key_pem(key), secret=True)
    write_atomically(data_dir / "node.pem", answer["certificate"].encode())
    write_atomically(data_dir / "ca.pem", answer["ca"].encode())
    config = data_dir / "node.toml"
    settings = {
        "device_id": device_id,
        "kind": answer["kind"],
        "data_dir": str(data_dir),
        "broker_host": answer["broker"]["host"],
        "broker_port": answer["broker"]["port"],
        "ca_file": str(data_dir / "ca.pem"),
        "cert_file": str(data_dir / "node.pem"),
        "key_file": str(data_dir / "node.key"),
        "command_keys": answer["command_keys"],
        "require_signed_commands": True,
    }
    if answer.get("ota"):  # pin the update roots (TUF trust on first use is not TUF)
        (data_dir / "ota").mkdir(exist_ok=True)
        for name in ("image_root", "director_root"):
            path = data_dir / "ota" / f"{name.replace('_', '-')}.json"
            write_atomically(path, answer["ota"][name].encode())
        # the mutual-TLS address central names, or (dev) its plain HTTP /ota
        settings["ota_url"] = answer.get("ota_url") or central.rstrip("/") + "/ota"
    write_atomically(config, tomli_w.dumps(settings).encode())
    if check_broker:
        _check_broker(device_id, data_dir, answer["broker"], say)
    kind = answer["kind"]
    say(f"done: start the node with `baling supervise {kind} --config {config}`")
    return Result(device_id=device_id, config=config)


def _check_broker(
    device_id: str, data_dir: Path, broker: dict[str, Any], say: Callable[[str], None]
) -> None:
    """Connect once with the new certificate, so a refusal shows now, not later."""
    from edge.bus import PahoBus, TlsFiles  # noqa: PLC0415

    where = f"{broker['host']}:{broker['port']}"
    say(f"    checking the broker at {where} with the new certificate …")
    bus = PahoBus(
        client_id=device_id,
        host=broker["host"],
        port=int(broker["port"]),
        tls=TlsFiles(
            ca_file=data_dir / "ca.pem",
            cert_file=data_dir / "node.pem",
            key_file=data_dir / "node.key",
        ),
        clean_start=True,
        session_expiry=0,
    )
    bus.start()
    try:
        if not bus.wait_connected(10):
            raise EnrolError(
                f"the broker at {broker['host']}:{broker['port']} refused this node's "
                "certificate or cannot be reached; the files are written - check the "
                "network to the broker, then ask the centre whether the broker trusts "
                "the fleet CA"
            )
    finally:
        bus.stop()
