"""The house's import rules, read from the source with :mod:`ast`.

Every ``import`` counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import still runs up the house. The rules and the
reason for each shared module are written in ``docs/architecture.md``
("Boundaries"); this test is their enforcement.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODES = ("kiosk", "camera_node", "loop_detector", "signal_controller", "handheld")
OURS = frozenset({*NODES, "edge", "provisioning", "firmware_sim", "central", "baling"})
# What central may import from edge: the wire contract and the shared
# infrastructure (docs/architecture.md says why for each).
CENTRAL_FROM_EDGE = ("edge.protocol", "edge.clock", "edge.bus", "edge.ota.delta")
# What central may import from provisioning: the fleet CA, the enrolment
# primitives and their errors; the enrolling client (enroll, technician) is the
# node side's.
CENTRAL_FROM_PROVISIONING = (
    "provisioning.ca",
    "provisioning.codes",
    "provisioning.identity",
    "provisioning.brokerconf",
    "provisioning.errors",
)


def imports_of(source: str) -> list[str]:
    """Every absolute module a source imports, wherever the import stands."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


def _central_rules(top: str, module: str) -> list[str]:
    problems: list[str] = []
    if top in {*NODES, "firmware_sim"}:
        problems.append("central never imports node or simulator code")
    if top == "edge" and not _within(module, CENTRAL_FROM_EDGE):
        problems.append(f"central imports from edge only {CENTRAL_FROM_EDGE}")
    if top == "provisioning" and not _within(module, CENTRAL_FROM_PROVISIONING):
        problems.append(
            f"central imports from provisioning only {CENTRAL_FROM_PROVISIONING}"
        )
    return problems


def broken_rules(package: str, module: str) -> list[str]:
    """The rules that ``package`` importing ``module`` breaks ([] if none)."""
    top = module.split(".", maxsplit=1)[0]
    if top not in OURS or top == package:
        return []
    problems: list[str] = []
    if package != "baling" and top == "baling":
        problems.append("only the orchestrators' package imports baling")
    if package in {*NODES, "edge", "provisioning", "firmware_sim"} and top == "central":
        problems.append("nodes, edge, provisioning and simulators never import central")
    if package in {*NODES, "edge", "provisioning"} and top == "firmware_sim":
        problems.append("nothing a node runs imports the simulators")
    if package in {*NODES, "provisioning"} and top in {*NODES, "provisioning"}:
        problems.append("a node imports edge, not another node package")
    if package == "edge" and top != "edge":
        problems.append("edge imports none of the packages built on it")
    if package == "central":
        problems += _central_rules(top, module)
    return problems


def _violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "versions" in path.parts:  # Alembic revisions import nothing of ours
            continue
        source = path.read_text(encoding="utf-8")
        for module in imports_of(source):
            found += [
                f"{path.relative_to(ROOT)}: {module}: {why}"
                for why in broken_rules(package, module)
            ]
    return found


@pytest.mark.parametrize("package", sorted(OURS))
def test_no_import_runs_against_the_house_rules(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
    assert _violations(package) == []


def test_the_reader_sees_lazy_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from central.main import Central\n"
        "def f() -> None:\n"
        "    import baling.up\n"
    )
    assert imports_of(source) == [
        "typing.TYPE_CHECKING",
        "central.main.Central",
        "baling.up",
    ]


@pytest.mark.parametrize(
    ("package", "module"),
    [
        ("firmware_sim", "baling.up.run"),
        ("firmware_sim", "central.fleet.registry"),
        ("kiosk", "central.settings.CentralSettings"),
        ("kiosk", "handheld.nmea"),
        ("edge", "provisioning.ca"),
        ("central", "edge.ota.client.DRILL"),
        ("central", "signal_controller.pressure"),
        ("central", "firmware_sim.traffic"),
        ("central", "provisioning.enroll.enroll"),
    ],
)
def test_each_rule_refuses_what_it_names(package: str, module: str) -> None:
    assert broken_rules(package, module) != []


@pytest.mark.parametrize(
    ("package", "module"),
    [
        ("central", "edge.protocol.kinds.REGISTRY"),
        ("central", "edge.protocol.release.DRILL"),
        ("central", "edge.clock.Clock"),
        ("central", "provisioning.ca.FleetCA"),
        ("firmware_sim", "signal_controller.gbt20999"),
        ("baling", "central.main.Central"),
        ("kiosk", "edge.agent.Agent"),
    ],
)
def test_what_the_design_allows_passes(package: str, module: str) -> None:
    assert broken_rules(package, module) == []


# One HTTP client library (httpx2) on our side. balena-sdk speaks requests
# inside; central/ota/balena.py only names its error to map it at the boundary.
OTHER_HTTP_CLIENTS = ("urllib.request", "urllib3", "requests", "http.client", "aiohttp")
MAY_NAME_REQUESTS = frozenset({"central/ota/balena.py"})


def _other_clients(where: str, source: str) -> list[str]:
    return [
        f"{where}: {module}"
        for module in imports_of(source)
        if _within(module, OTHER_HTTP_CLIENTS)
        and not (where in MAY_NAME_REQUESTS and _within(module, ("requests",)))
    ]


def test_one_http_client_library() -> None:
    found = []
    for package in sorted(OURS):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            found += _other_clients(where, path.read_text(encoding="utf-8"))
    assert found == []
    assert _other_clients("kiosk/agent.py", "import urllib.request\n") != []
