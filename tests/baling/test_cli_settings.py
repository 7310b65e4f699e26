"""The ``baling`` command reads the environment once, through settings objects."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from baling.cli import main
from baling.settings import CentralFiles, OperatorSecrets, given

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_central_files_come_from_central_s_own_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CENTRAL_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("CENTRAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CENTRAL_CA_PASSPHRASE", "长长的口令")
    monkeypatch.setenv("CENTRAL_JWT_SECRET", "short")  # not theirs: ignored here
    files = CentralFiles()
    assert files.database_url == "sqlite:///x.db"
    assert files.data_dir == tmp_path
    assert files.issuing_passphrase() == "长长的口令".encode()
    assert "长长的口令" not in repr(files)  # a secret stays out of logs


def test_unset_or_empty_secrets_mean_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CENTRAL_CA_PASSPHRASE", "BALING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BALING_CA_ROOT_PASSPHRASE", "")
    assert CentralFiles().issuing_passphrase() is None
    secrets = OperatorSecrets()
    assert given(secrets.password) is None
    assert given(secrets.ca_root_passphrase) is None
    monkeypatch.setenv("BALING_PASSWORD", "pw")
    assert given(OperatorSecrets().password) == "pw"


def test_audit_without_a_database_says_which_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CENTRAL_DATABASE_URL", raising=False)
    assert main(["audit", "verify"]) == 2
    assert "set CENTRAL_DATABASE_URL" in capsys.readouterr().err


def test_only_the_settings_module_reads_the_environment() -> None:
    for path in sorted((ROOT / "baling").glob("*.py")):
        if path.name == "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        reads = [
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr in {"environ", "getenv"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ]
        assert reads == [], f"{path.name} reads the environment directly"
