"""固件升级 in the browser: publish, roll out, watch the waves, see a drill halt.

Central, Mosquitto and a small fleet of virtual nodes (the real update loop,
TUF over HTTP, A/B slots; only their restarts are simulated) behind
Debian's Chromium. Every change on the page arrives over the live stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session
from support.console import sign_in

from central.fleet import registry
from central.operators.auth import create_operator
from edge.ota.client import pin_roots
from firmware_sim.otafleet import FleetLog, FleetRunner, node_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from central.main import Central

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture
def ota_site(
    make_central: Callable[..., Central],
    sqlite_url: str,
    serve_app: Callable[..., str],
    broker: Any,
    tmp_path: Path,
) -> Iterator[str]:
    """Central holding a demo signing key, and four virtual nodes; its URL."""
    central = make_central(
        sqlite_url, ota_release_keys=tmp_path / "release-keys", ota_tick_s=0.5
    )
    base = serve_app(central.app)
    assert central.ota is not None
    fleet = []
    with Session(central.services.engine) as s:
        create_operator(
            s, username="ops", password=PASSWORD, role="admin", now=datetime.now(UTC)
        )
        for i in range(4):
            device = f"sim-{i}"
            registry.register(s, device_id=device, kind="sim", now=datetime.now(UTC))
            settings = node_settings(device, "sim", tmp_path / "nodes", f"{base}/ota")
            anchors = central.ota.trust_anchors(device)
            assert anchors is not None
            pin_roots(settings.data_dir, *anchors)
            fleet.append(settings)
    runner = FleetRunner(fleet, host="127.0.0.1", port=broker.port, log=FleetLog())
    runner.start()
    yield base
    runner.stop()


def test_publish_roll_out_and_a_drill_that_halts_itself(
    ota_site: str, browser_page: Any
) -> None:
    base = ota_site
    page = browser_page
    page.goto(f"{base}/console/#ota")
    sign_in(page, "ops", PASSWORD)
    page.wait_for_selector("#live.on")

    # publish 0.2.0 and roll it out: canary of 1, then waves of 3. The kinds
    # come from the registry (GET /api/v1/kinds), shown by their Chinese name.
    kind = "#release-form select[name=kind]"
    page.wait_for_selector(f"{kind} option[value=sim]", state="attached")
    assert "模拟节点" in page.locator(kind).inner_text()
    page.select_option(kind, label="模拟节点")
    page.fill("#release-form input[name=version]", "0.2.0")
    page.click("#release-form button[type=submit]")
    page.wait_for_selector("#ota-msg:has-text('baling-sim-0.2.0.tar')")
    page.fill("#rollout-form input[name=canary]", "1")
    page.click("#rollout-form button[type=submit]")
    page.wait_for_selector(".rollout .state-done", timeout=60_000)
    card = page.locator(".rollout").first
    assert "已触达 4/4 台" in card.inner_text()
    bars = card.locator(".wave").all_inner_texts()
    assert bars == ["第 1 批\n✔1 ✘0 ⋯0 / 1", "第 2 批\n✔3 ✘0 ⋯0 / 3"], bars

    # a fault drill: the canary fails its health check, rolls back, and
    # the rollout cancels itself before anyone else takes it. The kind
    # chosen for the last release is still chosen for this one.
    assert page.locator(kind).input_value() == "sim"
    page.fill("#release-form input[name=version]", "0.3.0")
    page.check("#release-form input[name=drill]")
    page.click("#release-form button[type=submit]")
    page.wait_for_selector("#ota-msg:has-text('baling-sim-0.3.0.tar')")
    page.select_option("#rollout-release", "baling-sim-0.3.0.tar")
    page.fill("#rollout-form input[name=canary]", "1")
    page.click("#rollout-form button[type=submit]")
    page.wait_for_selector(".rollout .state-cancelled", timeout=60_000)
    card = page.locator(".rollout").first
    assert "已触达 1/4 台" in card.inner_text()
    assert "1 台中 1 台失败" in card.inner_text()  # the rule's reason, in Chinese
    # The node's own reason on the card, without opening the node list.
    page.wait_for_selector(".rollout .node-notes li.failed")
    assert "已回滚" in card.locator(".node-notes").inner_text()
    card.locator("button[data-action=nodes]").click()
    page.wait_for_selector("#rn-rows tr")
    rows = page.locator("#rn-rows tr").all_inner_texts()
    failed = [r for r in rows if "已回滚" in r]
    assert len(failed) == 1, rows
    assert "fault drill" in failed[0]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-ota.png"), full_page=True)
