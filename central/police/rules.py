"""The police service's rules: every threshold in one value.

Values only: :class:`PoliceRules` gathers the SOS, beat and phone rules of
the pure cores and the service's own (how fresh a fix places an officer,
the local time zone). Built from settings in :mod:`central.main`; how an
alarm looks is :mod:`central.police.views`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from central.police import beat as beats
from central.police import sos as sos_rules
from central.police.phone import PhoneRules


@dataclass(frozen=True, slots=True)
class PoliceRules:
    """Everything configurable about the police service."""

    sos: sos_rules.SosRules = field(default_factory=sos_rules.SosRules)
    beat: beats.BeatRules = field(default_factory=beats.BeatRules)
    phone: PhoneRules = field(default_factory=PhoneRules)
    fresh_s: float = 600.0  # a fix older than this does not place an officer
    tz: str = "Asia/Shanghai"
