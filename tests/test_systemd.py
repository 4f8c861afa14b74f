"""The systemd unit and the daemon/ folder are valid as shipped."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "nepid@.service"

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed "
                                          "(the Makefile installs the systemd package)")


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    template = tmp_path / "nepid@.service"
    template.write_text(unit_text)
    instance = tmp_path / "nepid@demo.service"
    instance.symlink_to(template.name)
    return subprocess.run(["systemd-analyze", "verify", str(instance)],
                          capture_output=True, text=True)


@needs_systemd
def test_unit_passes_systemd_analyze_verify(tmp_path):
    result = _verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_systemd
def test_verify_catches_a_broken_unit(tmp_path):
    broken = UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes")
    result = _verify(broken, tmp_path)
    assert "restart specifier" in result.stderr
    missing = UNIT.read_text().replace("ExecStart=/usr/bin/env", "ExecStart=/nonexistent/env")
    result = _verify(missing, tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
    assert result.returncode != 0 and "not executable" in result.stderr


def test_unit_runs_nepid_in_the_foreground_and_restarts_on_failure():
    text = UNIT.read_text()
    assert "nepid start --foreground --root-dir ${NEPI_ROOT_BASE}/%i" in text
    assert "Restart=on-failure" in text
    assert "KillMode=process" in text        # testbed daemons survive for recovery
    assert "ExecStop=/usr/bin/env nepid stop" in text


def test_daemon_folder_is_not_a_python_package():
    assert not (ROOT / "daemon" / "__init__.py").exists()
    import daemon as python_daemon
    assert hasattr(python_daemon, "DaemonContext"), python_daemon.__file__
    assert "site-packages" in os.path.realpath(python_daemon.__file__) or \
        "dist-packages" in os.path.realpath(python_daemon.__file__)


def test_environment_file_lines_are_key_value():
    for line in (ROOT / "daemon" / "nepid.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key.isupper() and value, line
