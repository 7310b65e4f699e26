"""Who may do what, where: roles with district scope, decided by casbin.

The model is RBAC with domains: an operator holds a role in each site
(district) of their scope (``*`` for the whole county), and a role grants
actions on resources. Roles come from the Foundation issue; scope is the
operator's ``scope`` list. Handlers ask :meth:`Access.check` and turn a
refusal into HTTP 403; this module does no HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import casbin
from casbin import model as casbin_model
from casbin.util import key_match

from central.errors import AuthError

if TYPE_CHECKING:
    from central.auth import Principal

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
m = g(r.sub, p.sub, r.dom) && keyMatch(r.obj, p.obj) && regexMatch(r.act, p.act)
"""

# role, resource pattern, action regex
GRANTS: tuple[tuple[str, str, str], ...] = (
    ("admin", "*", ".*"),
    ("technician", "devices*", "^(read|register|update|retire|replace|command)$"),
    ("technician", "policy*", "^(read|write)$"),
    ("technician", "enrolment*", "^create$"),
    ("traffic", "devices*", "^(read|command)$"),
    ("traffic", "policy*", "^read$"),
    ("police", "devices*", "^read$"),
    ("police", "lookup*", "^read$"),
    ("police", "police*", "^(read|write)$"),
    ("complaints", "devices*", "^read$"),
    ("complaints", "complaints*", "^(read|write)$"),
    ("department", "complaints*", "^(read|write)$"),
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
        for grant in GRANTS:
            self._enforcer.add_policy(*grant)
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
