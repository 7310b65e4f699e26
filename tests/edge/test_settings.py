from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from edge import NodeSettings, SettingsError, load_settings

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        'device_id = "cam-7"\nkind = "camera"\ndata_dir = "/var/lib/b"\n'
        "broker_port = 8883\n",
    )
    s = load_settings(NodeSettings, path)
    assert (s.device_id, s.kind, s.broker_port) == ("cam-7", "camera", 8883)
    monkeypatch.setenv("BALING_NODE_BROKER_PORT", "1884")
    assert load_settings(NodeSettings, path).broker_port == 1884


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('device_id = "cam-7"\nkind = "toaster"\ndata_dir = "/x"\n', "kind"),
        ('device_id = "Cam 7"\nkind = "camera"\ndata_dir = "/x"\n', "device_id"),
        ('device_id = "cam-7"\nkind = "camera"\n', "data_dir"),
        (
            'device_id = "cam-7"\nkind = "camera"\ndata_dir = "/x"\ncolour = 1\n',
            "colour",
        ),
        ("device_id = [", "expected TOML"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        load_settings(NodeSettings, write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(NodeSettings, tmp_path / "nope.toml")
