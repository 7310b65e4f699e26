"""Who may do what, where: roles with district scope, decided by casbin.

The model is RBAC with domains: an operator holds a role in each site
(district) of their scope (``*`` for the whole county), and a role grants
actions on resources. Roles come from the Foundation issue; scope is the
operator's ``scope`` list. Handlers ask :meth:`Access.check` and turn a
refusal into HTTP 403; this module does no HTTP.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import casbin
from casbin import model as casbin_model
from casbin.util import key_match

from central.errors import AuthError
from central.models import ROLES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from central.operators.auth import Principal

MODEL = """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && regexMatch(r.obj, p.obj) && regexMatch(r.act, p.act)
"""

# THE permission matrix: role, resource (regex, whole name), actions (regex,
# whole name). Every /api route names the resource and action it needs (see
# ``central.api.deps.permit``); the district comes from the object acted on
# (a device's site, a rollout's target site) and must be in the operator's
# scope. Resources nobody but an admin holds: ``trust`` (command keys, factory
# reset), ``audit``, ``operators``, ``metrics``, ``ota/unsafe`` (rollout
# thresholds above the sane maxima). docs/security.md renders this table.
GRANTS: tuple[tuple[str, str, str], ...] = (
    ("admin", ".*", ".*"),
    (
        "technician",
        "devices/.*",
        "read|config|register|update|retire|replace|command",
    ),
    # A technician maintains handhelds but does not see where officers are.
    (
        "technician",
        "devices/(kiosk|camera|loop_detector|signal_controller|sim)",
        "events",
    ),
    ("technician", "policy", "read|write"),
    ("technician", "enrolment", "create"),
    ("technician", "ota", "read|write"),
    (
        "traffic",
        "devices/(loop_detector|signal_controller)",
        "read|config|events|command",
    ),
    ("traffic", "signals", "read|write"),
    ("traffic", "policy", "read"),
    # 诱导: links and travel times are the traffic centre's; incidents are
    # decided by the traffic centre and the police alike.
    ("traffic", "guidance", "read|write"),
    ("traffic", "guidance/incidents", "read|write"),
    ("police", "devices/(handheld|camera)", "read|events"),
    ("police", "police", "read|write"),
    ("police", "lookup", "read"),
    ("police", "plates", "read|write"),
    ("police", "guidance", "read"),
    ("police", "guidance/incidents", "read|write"),
    ("complaints", "devices/kiosk", "read"),
    ("complaints", "complaints", "read|write"),
    # The desk's own work: filing by phone, departments, services, calendar.
    ("complaints", "complaints/desk", "read|write"),
    # Name, phone and follow-up code of a complainant: the desk calls back.
    ("complaints", "complaints/personal", "read"),
    ("complaints", "kiosk-content", "read|write"),
    # Departments reply to the complaints passed to them, from the text and
    # place; they never see who complained (the desk calls back).
    ("department", "complaints", "read|write"),
)


class ForbiddenError(AuthError):
    """The operator's role or scope does not allow this."""


class Access:
    """A casbin enforcer over :data:`GRANTS`; scopes are added per operator."""

    def __init__(self) -> None:
        model = casbin_model.Model()
        model.load_model_from_text(MODEL)
        self._enforcer = casbin.Enforcer(model)
        # A role held in domain "*" holds in every site.
        self._enforcer.add_named_domain_matching_func("g", key_match)
        for role, obj, act in GRANTS:
            self._enforcer.add_policy(role, f"^(?:{obj})$", f"^(?:{act})$")
        self._known: set[str] = set()

    def _subject(self, principal: Principal) -> str:
        # The subject names role and scope, so a changed role or scope is a
        # new subject and stale groupings never grant anything.
        subject = f"{principal.username}|{principal.role}|{','.join(principal.scope)}"
        if subject not in self._known:
            for site in principal.scope:
                self._enforcer.add_grouping_policy(subject, principal.role, site)
            self._known.add(subject)
        return subject

    def allowed(self, principal: Principal, *, site: str, obj: str, act: str) -> bool:
        """Whether ``principal`` may ``act`` on ``obj`` at ``site``."""
        return bool(
            self._enforcer.enforce(self._subject(principal), site or "-", obj, act)
        )

    def role_allows(self, role: str, *, obj: str, act: str) -> bool:
        """Whether ``role`` may ``act`` on ``obj`` in at least some district."""
        return bool(self._enforcer.enforce(role, "*", obj, act))

    def check(self, principal: Principal, *, site: str, obj: str, act: str) -> None:
        """Raise unless allowed.

        Raises:
            ForbiddenError: naming the role, the scope and what was asked.
        """
        if not self.allowed(principal, site=site, obj=obj, act=act):
            raise ForbiddenError(
                f"{principal.username} ({principal.role}, scope "
                f"{list(principal.scope)}) may not {act} {obj} at site {site or '-'!r}"
            )


# What each live update (the console's event stream) reveals, as a resource
# and action of the matrix; a type not listed here is shown to admins only.
LIVE: dict[str, tuple[str, str]] = {
    "officer": ("police", "read"),
    "alarm": ("police", "read"),
    "receipt": ("police", "read"),
    "plate_hit": ("plates", "read"),
    "plate_read": ("plates", "read"),
    # Complaint updates carry the 查询码: the desk's, not a department's.
    "complaint": ("complaints/personal", "read"),
    "rollout": ("ota", "read"),
    "signal_plan": ("signals", "read"),
    "signal_state": ("signals", "read"),
    "incident": ("guidance/incidents", "read"),
    "travel_time": ("guidance", "read"),
}


def live_permission(item: Mapping[str, Any], *, kind: str = "") -> tuple[str, str]:
    """The resource and action a live update needs (``kind``: its device's)."""
    type_ = str(item.get("type", ""))
    if type_ == "device":
        return f"devices/{kind or '?'}", "read"
    return LIVE.get(type_, (f"live/{type_}", "read"))


def live_device(item: Mapping[str, Any]) -> str:
    """The device a live update is about ('' when none): its district decides."""
    key = "id" if item.get("type") == "device" else "device"
    return str(item.get(key) or item.get("junction") or "")


def _readable(pattern: str) -> str:
    # "devices/(a|b)" -> "devices/{a, b}", "devices/.*" -> "devices/*": a
    # Markdown table cell cannot hold "|".
    text = re.sub(
        r"\(([^()]*)\)", lambda m: "{" + ", ".join(m[1].split("|")) + "}", pattern
    )
    return text.replace(".*", "*")


def render_matrix() -> str:
    """The permission matrix as a Markdown table (docs/security.md holds it).

    Returns:
        One row per grant of :data:`GRANTS`, roles in :data:`ROLES` order.
    """
    lines = [
        "| role | resource | actions | where |",
        "|---|---|---|---|",
    ]
    for role in ROLES:
        for who, obj, act in GRANTS:
            if who != role:
                continue
            resource = "everything" if obj == ".*" else f"`{_readable(obj)}`"
            actions = "all" if act == ".*" else ", ".join(act.split("|"))
            lines.append(f"| {role} | {resource} | {actions} | its districts |")
    return "\n".join(lines) + "\n"


MIN_REASON = 4


def check_lookup(
    access: Access, principal: Principal, *, site: str, reason: str
) -> str:
    """A person or vehicle look-up: allowed for the role, and with a stated reason.

    Raises:
        ForbiddenError: no reason (or a token one), or the role or scope refuses.

    Returns:
        The reason, trimmed, for the audit log.
    """
    stated = reason.strip()
    if len(stated) < MIN_REASON:
        raise ForbiddenError(
            f"a look-up needs a stated reason (at least {MIN_REASON} characters), "
            f"got {reason!r:.40}"
        )
    access.check(principal, site=site, obj="lookup", act="read")
    return stated
