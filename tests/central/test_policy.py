import pytest

from central.errors import PolicyError
from central.fleet.policy import (
    DeviceFacts,
    Layer,
    check_layer,
    config_version,
    desired_config,
)

CAM = DeviceFacts(id="cam-1", kind="camera", site="rjw", groups=("north", "pilot"))
SIM = DeviceFacts(id="sim-1", kind="sim", site="rjw")


def test_later_layers_override_earlier_ones() -> None:
    layers = [
        Layer("device", "cam-1", 1, {"heartbeat_s": 5}),
        Layer("fleet", "*", 3, {"heartbeat_s": 60, "telemetry_s": 120}),
        Layer("group", "pilot", 1, {"telemetry_s": 30}),
        Layer("group", "north", 2, {"telemetry_s": 40}),
        Layer("site", "other", 1, {"heartbeat_s": 1}),
        Layer("kind", "camera", 2, {"log_level": "DEBUG"}),
    ]
    d = desired_config(layers, CAM)
    shared = {k: d.values[k] for k in ("heartbeat_s", "telemetry_s", "log_level")}
    assert shared == {"heartbeat_s": 5.0, "telemetry_s": 30.0, "log_level": "DEBUG"}
    assert d.values["fps"] == 5.0  # the camera's own defaults are filled in too
    assert d.sources == (
        "fleet/*@3",
        "kind/camera@2",
        "group/north@2",
        "group/pilot@1",
        "device/cam-1@1",
    )


def test_fleet_keys_of_other_kinds_are_left_out() -> None:
    layers = [Layer("fleet", "*", 1, {"event_interval_s": 2})]
    assert "event_interval_s" not in desired_config(layers, CAM).values
    assert desired_config(layers, SIM).values["event_interval_s"] == 2


def test_invalid_merge_names_device_field_and_sources() -> None:
    layers = [Layer("site", "rjw", 4, {"heartbeat_s": 0})]
    with pytest.raises(
        PolicyError, match=r"device cam-1: body.heartbeat_s.*site/rjw@4"
    ):
        desired_config(layers, CAM)


def test_device_layer_is_strict() -> None:
    with pytest.raises(PolicyError, match="event_interval_s"):
        desired_config([Layer("device", "cam-1", 1, {"event_interval_s": 1})], CAM)


@pytest.mark.parametrize(
    ("layer", "words"),
    [
        (Layer("fleet", "*", 1, {"nope": 1}), "unknown \\['nope'\\]"),
        (Layer("kind", "camera", 1, {"heartbeat_s": "often"}), "kind/camera"),
    ],
)
def test_check_layer(layer: Layer, words: str) -> None:
    with pytest.raises(PolicyError, match=words):
        check_layer(layer)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("planet", "*", 1, {}), "scope"),
        (("fleet", "x", 1, {}), "'\\*'"),
        (("kind", "toaster", 1, {}), "kind"),
    ],
)
def test_layers_validate_themselves(
    args: tuple[str, str, int, dict[str, int]], words: str
) -> None:
    with pytest.raises(PolicyError, match=words):
        Layer(*args)


def test_version_is_a_content_hash() -> None:
    assert config_version({"a": 1, "b": 2}) == config_version({"b": 2, "a": 1})
    assert config_version({"a": 1}) != config_version({"a": 2})
    assert len(desired_config([], CAM).version) == 16
