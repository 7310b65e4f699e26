"""Layered fleet policy → each device's desired configuration (pure).

Layers apply in the order fleet → kind → site → group (sorted by name) →
device; a later layer overrides an earlier one key by key. Keys a device's
kind does not know are left out for fleet/site/group layers (one fleet
document serves every kind) but must be known to at least one kind. The
result is validated against the kind's schema from :mod:`edge.protocol`, so
central never publishes a configuration the node would refuse for shape.
Storage and publishing are left to :mod:`central.fleet.twin`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from central.errors import PolicyError
from edge.protocol import PayloadError
from edge.protocol.messages import KIND_CONFIG, validate_config

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

SCOPES = ("fleet", "kind", "site", "group", "device")
_STRICT_SCOPES = {"kind", "device"}
_KNOWN_KEYS = frozenset(k for m in KIND_CONFIG.values() for k in m.model_fields)


@dataclass(frozen=True, slots=True)
class Layer:
    """One policy document in force."""

    scope: str
    target: str
    version: int
    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise PolicyError(f"expected a scope of {SCOPES}, got {self.scope!r}")
        if self.scope == "fleet" and self.target != "*":
            raise PolicyError(
                f"expected target '*' for the fleet layer, got {self.target!r}"
            )
        if self.scope == "kind" and self.target not in KIND_CONFIG:
            raise PolicyError(
                f"expected a kind of {sorted(KIND_CONFIG)}, got {self.target!r}"
            )


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What policy needs to know about a device."""

    id: str
    kind: str
    site: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Desired:
    """A device's desired configuration, its version and the layers behind it."""

    version: str
    values: dict[str, Any]
    sources: tuple[str, ...]


def _applies(layer: Layer, device: DeviceFacts) -> bool:
    return (
        layer.scope == "fleet"
        or (layer.scope == "kind" and layer.target == device.kind)
        or (layer.scope == "site" and layer.target == device.site)
        or (layer.scope == "group" and layer.target in device.groups)
        or (layer.scope == "device" and layer.target == device.id)
    )


def _order(layer: Layer) -> tuple[int, str]:
    return SCOPES.index(layer.scope), layer.target


def check_layer(layer: Layer) -> None:
    """Refuse keys no kind knows, and a kind layer its kind would refuse.

    Raises:
        PolicyError: naming the key or field and the value that arrived.
    """
    unknown = sorted(set(layer.values) - _KNOWN_KEYS)
    if unknown:
        raise PolicyError(
            f"{layer.scope}/{layer.target}: expected keys of "
            f"{sorted(_KNOWN_KEYS)}, got unknown {unknown}"
        )
    if layer.scope == "kind":
        try:
            validate_config(layer.target, dict(layer.values))
        except PayloadError as exc:
            raise PolicyError(f"kind/{layer.target}: {exc}") from exc


def config_version(values: Mapping[str, Any]) -> str:
    """A short content hash: equal configurations have equal versions."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def desired_config(layers: Iterable[Layer], device: DeviceFacts) -> Desired:
    """Merge the layers that apply to ``device`` and validate the result.

    Raises:
        PolicyError: the merged configuration is invalid for the device's kind.
    """
    model = KIND_CONFIG.get(device.kind)
    if model is None:
        raise PolicyError(
            f"device {device.id}: expected a kind of {sorted(KIND_CONFIG)}, "
            f"got {device.kind!r}"
        )
    merged: dict[str, Any] = {}
    sources: list[str] = []
    for layer in sorted((la for la in layers if _applies(la, device)), key=_order):
        strict = layer.scope in _STRICT_SCOPES
        merged.update(
            {k: v for k, v in layer.values.items() if strict or k in model.model_fields}
        )
        sources.append(f"{layer.scope}/{layer.target}@{layer.version}")
    try:
        config = validate_config(device.kind, merged)
    except PayloadError as exc:
        raise PolicyError(
            f"device {device.id}: {exc} (from {', '.join(sources)})"
        ) from exc
    values = config.model_dump(mode="json")
    return Desired(
        version=config_version(values), values=values, sources=tuple(sources)
    )
