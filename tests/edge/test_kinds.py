"""The one registry of device kinds: every kind runs, ships and shows."""

from __future__ import annotations

import importlib
import re
from typing import get_args

import pytest

from edge.agent import Agent
from edge.protocol import messages
from edge.protocol.kinds import KIND_CONFIG, KINDS, REGISTRY, Kind, KindSpec, NodeConfig


def test_the_registry_lists_every_kind_of_the_wire_type_once() -> None:
    assert tuple(REGISTRY) == get_args(Kind) == KINDS
    assert set(KIND_CONFIG) == set(KINDS)
    # messages re-exports the same objects, so there is no second list
    assert messages.KIND_CONFIG is KIND_CONFIG
    assert messages.KINDS is KINDS


@pytest.mark.parametrize("code", KINDS)
def test_each_kind_names_a_real_agent_in_its_package(code: str) -> None:
    spec = REGISTRY[code]
    module, _, name = spec.agent.partition(":")
    agent_cls = getattr(importlib.import_module(module), name)
    assert issubclass(agent_cls, Agent)
    assert agent_cls.kind == code
    assert importlib.import_module(spec.package).__name__ == spec.package


@pytest.mark.parametrize("code", KINDS)
def test_each_kind_has_a_chinese_label_and_a_schema_with_defaults(code: str) -> None:
    spec = REGISTRY[code]
    assert re.fullmatch(r"[\u4e00-\u9fff]{2,12}", spec.label)
    assert isinstance(spec.config(), NodeConfig)


def test_an_agent_outside_the_kinds_package_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected agent 'kiosk\.<module>:<Class>'"):
        KindSpec(
            code="kiosk",
            label="信息亭",
            package="kiosk",
            agent="central.main:Central",
            config=NodeConfig,
        )
