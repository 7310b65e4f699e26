"""``baling up`` as a person runs it: one command, a console URL, a login, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from support.api import token as support_token

from baling.broker import free_port

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def _get(url: str, token: str) -> Any:
    answer = httpx2.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    answer.raise_for_status()
    return answer.json()


def test_baling_up_runs_everything_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "up",
            "--data-dir",
            str(tmp_path / "data"),
            "--http-port",
            str(port),
            "--traffic-s",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any(line.startswith("nodes:") for line in lines):
            line = proc.stdout.readline()
            assert line, f"baling up exited early: {''.join(lines)}"
            lines.append(line)
        out = "".join(lines)
        broker_line = r"^broker:  Mosquitto .* on 127\.0\.0\.1:\d+"
        assert re.search(broker_line, out, re.MULTILINE), out
        assert f"http://127.0.0.1:{port}/console/" in out
        login = re.search(r"^login:   (\S+) / (\S+)", out, re.MULTILINE)
        assert login, out
        token = support_token(f"http://127.0.0.1:{port}", login[1], login[2])
        deadline = time.monotonic() + 20
        device: dict[str, Any] = {}
        while time.monotonic() < deadline:
            device = _get(f"http://127.0.0.1:{port}/api/v1/devices/sim-1", token)
            if device["online"] and not device["drift"]:
                break
            time.sleep(0.3)
        assert device["online"] is True
        assert device["drift"] is False
        # Central signs commands; the node was set up to trust its key only.
        ping = _post(
            f"http://127.0.0.1:{port}/api/v1/devices/sim-1/commands/ping", token, {}
        )
        assert ping["ok"] is True
        _sos_reaches_the_squad(port, token, tmp_path / "data")
        _listed_car_alarms(port, token)
        kiosk = re.search(r"^kiosk:   (http://\S+)", out, re.MULTILINE)
        assert kiosk, out
        _kiosk_complaint_reaches_the_desk(kiosk[1], port, token)
        _enrol_a_node(port, login[1], login[2], token, tmp_path)
        _update_the_sim_node(port, token)
        _traffic_operator_pushes_a_plan(port, token)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "stopped." in rest
    assert (tmp_path / "data" / "admin-password.txt").stat().st_mode & 0o777 == 0o600


def _post(url: str, token: str, body: dict[str, Any]) -> Any:
    answer = httpx2.post(
        url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    answer.raise_for_status()
    return answer.json()


def _traffic_operator_pushes_a_plan(port: int, token: str) -> None:
    """交通信号: SUMO's traffic through the demo crossing reaches central as
    flows; a plan computed from them is pushed, and the cabinet runs it."""
    base = f"http://127.0.0.1:{port}/api/v1/signals"
    deadline = time.monotonic() + 120  # detector bins are a minute long
    junction: dict[str, Any] = {}
    main = side = 0
    while time.monotonic() < deadline:
        (junction,) = _get(f"{base}/junctions", token)
        main, _left, side, _side_left = junction["stage_flows_vph"]
        if main > 0 and side > 0:  # both cards' bins are in (they report apart)
            break
        time.sleep(1)
    assert junction["id"] == "jsl"
    assert main > side > 0, junction  # the morning peak is on the main road
    plan = _post(f"{base}/junctions/jsl/compute", token, {"method": "optimise"})
    pushed = _post(f"{base}/plans/{plan['id']}/push", token, {})
    if pushed["state"] == "refused" and "intergreen" in pushed["reason"]:
        # The cabinet's geometry asks for longer changes than central knew;
        # its refusal says how long, and the next plan gives every change that.
        told: dict[str, float] = {}
        while not told and time.monotonic() < deadline + 60:
            (last,) = _get(f"{base}/junctions/jsl/plans?limit=1", token)
            told = last["plan"].get("intergreens") or {}
            time.sleep(0.5)
        assert told, last
        plan = _post(f"{base}/junctions/jsl/compute", token, {"method": "optimise"})
        need = max(told.values())
        assert plan["plan"]["yellow"] + plan["plan"]["all_red"] >= need, plan
        pushed = _post(f"{base}/plans/{plan['id']}/push", token, {})
    assert pushed["state"] in {"accepted", "applied"}, (
        pushed["reason"],
        pushed["plan"],
    )
    while time.monotonic() < deadline + 120:  # at the end of the running cycle
        (now,) = _get(f"{base}/junctions/jsl/plans?limit=1", token)
        if now["state"] == "applied":
            break
        time.sleep(1)
    assert now["state"] == "applied", now


def _update_the_sim_node(port: int, token: str) -> None:
    """固件升级: publish a release from the console's API, roll it out, and
    find the node running it after its restart into the new slot."""
    base = f"http://127.0.0.1:{port}/api/v1/ota"
    release = _post(f"{base}/releases", token, {"kind": "sim", "version": "0.2.0"})
    assert release["name"] == "baling-sim-0.2.0.tar"
    rollout = _post(
        f"{base}/rollouts",
        token,
        {"release": release["name"], "version": "0.2.0", "kind": "sim", "canary": 1},
    )
    # the online sim-1 is the canary (the node enrolled above is offline)
    deadline = time.monotonic() + 90
    nodes: list[dict[str, Any]] = []
    done = ("succeeded", "failed")
    while time.monotonic() < deadline:
        nodes = _get(f"{base}/rollouts/{rollout['id']}/nodes", token)
        if any(n["device"] == "sim-1" and n["state"] in done for n in nodes):
            break
        time.sleep(0.5)
    (sim1,) = [n for n in nodes if n["device"] == "sim-1"]
    assert (sim1["state"], sim1["fw_state"]) == ("succeeded", "committed"), nodes
    device = _get(f"http://127.0.0.1:{port}/api/v1/devices/sim-1", token)
    deadline = time.monotonic() + 20
    while device["version"] != "0.2.0" and time.monotonic() < deadline:
        time.sleep(0.3)
        device = _get(f"http://127.0.0.1:{port}/api/v1/devices/sim-1", token)
    assert device["version"] == "0.2.0"


def _sos_reaches_the_squad(port: int, token: str, data_dir: Path) -> None:
    """The README's police demo: press an SOS, see it on the command console's
    alarm list, and find the alert received on the other officers' handhelds."""
    base = f"http://127.0.0.1:{port}/api/v1/police"
    deadline = time.monotonic() + 30
    officers: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        officers = _get(f"{base}/officers", token)
        if len(officers) == 3 and all(o["lat"] is not None for o in officers):
            break
        time.sleep(0.3)
    assert [o["name"] for o in officers] == ["王警官", "李警官", "赵队长"], officers
    pressed = subprocess.run(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "sim",
            "press",
            "handheld-1",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert pressed.returncode == 0, pressed.stderr
    alarm: dict[str, Any] = {}
    while time.monotonic() < deadline + 15:
        alarms = [a for a in _get(f"{base}/alarms", token) if a["kind"] == "sos"]
        if alarms:
            alarm = alarms[0]
            break
        time.sleep(0.3)
    assert alarm["device"] == "handheld-1", alarm
    assert {a["device"] for a in alarm["alerted"]} == {"handheld-2", "handheld-3"}
    received: set[str] = set()
    while time.monotonic() < deadline + 30 and len(received) < 2:
        receipts = _get(f"{base}/alarms/{alarm['id']}/receipts", token)
        received = {r["device"] for r in receipts if r["received_at"]}
        time.sleep(0.3)
    assert received == {"handheld-2", "handheld-3"}


def _listed_car_alarms(port: int, token: str) -> None:
    """The demo camera reads the listed car: a hit, and an alarm that reached
    the officers near the camera."""
    base = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 60
    alarms: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not alarms:
        alarms = [
            a for a in _get(f"{base}/police/alarms", token) if a["kind"] == "plate"
        ]
        time.sleep(0.5)
    assert alarms, "the listed car was not seen"
    assert alarms[0]["detail"]["plate"] == "湘FD4439"
    assert alarms[0]["alerted"], "no officer near the camera was alerted"
    hits = _get(f"{base}/plates/hits", token)
    assert ("湘FD4439", "exact") in [(h["listed"], h["kind"]) for h in hits]


def _kiosk_complaint_reaches_the_desk(kiosk: str, port: int, token: str) -> None:
    """A complaint typed at the demo kiosk shows at central's desk."""
    deadline = time.monotonic() + 30
    form_page = ""
    while time.monotonic() < deadline and "噪音扰民" not in form_page:
        try:
            answer = httpx2.get(f"{kiosk}complaint", timeout=5)
        except httpx2.TransportError:
            answer = None
        if answer is not None and answer.is_success:
            form_page = answer.text
        else:
            time.sleep(0.5)
    assert "噪音扰民" in form_page  # request types synced from central
    filed = httpx2.post(
        f"{kiosk}complaint",
        data={
            "service_code": "noise",
            "description": "夜间施工噪音",
            "identity": "anonymous",
        },
        timeout=15,
        follow_redirects=True,  # to the receipt page, named by the code
    )
    filed.raise_for_status()
    code = filed.url.path.rsplit("/", 1)[1]
    assert len(code) == 8
    base = f"http://127.0.0.1:{port}/api/v1/complaints"
    codes: list[str] = []
    while time.monotonic() < deadline + 20 and code not in codes:
        codes = [c["code"] for c in _get(base, token)["items"]]
        time.sleep(0.3)
    assert code in codes


def _enrol_a_node(
    port: int, user: str, password: str, token: str, tmp_path: Path
) -> None:
    """The README's enrolment: a code, `provision enroll`, the node comes online."""
    central = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BALING_PASSWORD": password}
    base = [sys.executable, "-m", "baling.cli"]
    made = subprocess.run(
        [
            *base,
            "provision",
            "code",
            "--central",
            central,
            "--user",
            user,
            "--kind",
            "sim",
            "--site",
            "rongjiawan",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(made.stdout)
    subprocess.run(
        [
            *base,
            "provision",
            "enroll",
            "--central",
            central,
            "--code",
            answer["code"],
            "--data-dir",
            str(tmp_path / "enrolled"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    node = subprocess.Popen(
        [*base, "node", "sim", "--config", str(tmp_path / "enrolled" / "node.toml")]
    )
    try:
        deadline = time.monotonic() + 20
        device: dict[str, Any] = {}
        while time.monotonic() < deadline and not device.get("online"):
            device = _get(f"{central}/api/v1/devices/{answer['device_id']}", token)
            time.sleep(0.3)
        assert device["online"] is True
        assert device["site"] == "rongjiawan"
    finally:
        node.terminate()
        node.wait(timeout=15)
