"""A node's settings for a test: the fields every test repeats, filled in.

Every node test needs a device id, a data directory under ``tmp_path`` and
the test broker's port; this builds the node kind's own settings model from
them plus whatever the test adds. Starting the agent is left to the test
(``edge.agent.build_agent``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from edge.settings import NodeSettings

if TYPE_CHECKING:
    from pathlib import Path

S = TypeVar("S", bound=NodeSettings)


def node_config(
    model: type[S],
    *,
    device_id: str,
    kind: str,
    tmp_path: Path,
    broker_port: int = 1883,
    **extra: object,
) -> S:
    """Settings of one node, validated by its kind's model.

    Args:
        model: The kind's settings class (``NodeSettings``, ``KioskSettings``…).
        device_id: The node's id; its data lives in ``tmp_path / device_id``.
        kind: The node's kind.
        tmp_path: The test's directory.
        broker_port: The test broker's port (nothing listens on 1883 in CI,
            which suits a node that must not connect).
        **extra: Further fields of ``model``.

    Raises:
        pydantic.ValidationError: a field is not what ``model`` accepts.

    Returns:
        The settings.
    """
    return model.model_validate(
        {
            "device_id": device_id,
            "kind": kind,
            "data_dir": tmp_path / device_id,
            "broker_port": broker_port,
            **extra,
        }
    )
