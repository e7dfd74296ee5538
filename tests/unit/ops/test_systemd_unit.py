"""systemd/titan.service: the directives the deployment relies on, and systemd-analyze verify."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[3] / "systemd"
UNIT = SYSTEMD / "titan.service"


def directives(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat), comments and blank lines skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_is_type_notify_with_watchdog_restart_limit_and_dedicated_user() -> None:
    unit = directives(UNIT.read_text())
    service = unit["Service"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"][0].endswith("s")
    assert service["Restart"] == ["on-failure"]
    assert int(unit["Unit"]["StartLimitBurst"][0]) >= 1  # limits belong in [Unit]
    assert "StartLimitIntervalSec" in unit["Unit"]
    assert service["User"] == ["titan"] and service["Group"] == ["titan"]
    assert service["EnvironmentFile"][0].lstrip("-") == "/etc/titan/titan.env"
    assert service["ExecStart"][0].split()[1:3] == ["run", "--config"]


def test_unit_is_hardened_and_writes_only_its_state_dir() -> None:
    service = directives(UNIT.read_text())["Service"]
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictSUIDSGID": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "UMask": "0077",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    assert service["ReadWritePaths"] == ["/var/lib/titan"]
    assert service["StateDirectory"] == ["titan"]
    assert "AF_UNIX" in service["RestrictAddressFamilies"][0]  # NOTIFY_SOCKET is AF_UNIX


def test_env_example_has_no_values_for_secrets() -> None:
    for line in (SYSTEMD / "titan.env.example").read_text().splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if any(part in key for part in ("SECRET", "KEY", "PASSWORD")):
            assert value == "", key


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    # verify checks that ExecStart exists: point it at this interpreter.
    start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    unit = tmp_path / "titan.service"
    unit.write_text(text.replace(start, f"ExecStart={sys.executable} -m titan run"))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Unknown key" not in output and "titan.service:" not in output, output


def test_example_service_config_is_valid() -> None:
    """systemd/titan.toml.example: its [ops] validates; the whole file once TitanConfig has ops."""
    import tomllib

    from titan.config import TitanConfig, load_config
    from titan.config.ops import OpsConfig

    path = SYSTEMD / "titan.toml.example"
    data = tomllib.loads(path.read_text())
    ops = OpsConfig.model_validate(data["ops"])
    assert ops.mqtt.enabled and ops.mqtt.tls.enabled and ops.metrics.port == 9464
    assert str(data["runtime"]["state_dir"]).startswith("/var/lib/titan")
    if "ops" in TitanConfig.model_fields:
        assert load_config(path, env={}).mode == "paper"


Installed = dict[str, tuple[str, str, int]]  # path -> (owner, group, mode)


def installed_paths(doc: Path) -> Installed:
    """What the doc's `sudo install` lines create (as root: owner and group default to root)."""
    found: Installed = {}
    for line in doc.read_text().splitlines():
        if not line.startswith("sudo install "):
            continue
        words = shlex.split(line, comments=True)
        options, positional, rest = {"-o": "root", "-g": "root", "-m": "0755"}, [], words[2:]
        while rest:
            word = rest.pop(0)
            if word in options:
                options[word] = rest.pop(0)
            elif not word.startswith("-"):
                positional.append(word)
        found[positional[-1]] = (options["-o"], options["-g"], int(options["-m"], 8))
    return found


def grants(entry: tuple[str, str, int], user: str, group: str, bits: int) -> bool:
    owner, owner_group, mode = entry
    shift = 6 if owner == user else 3 if owner_group == group else 0
    return (mode >> shift) & bits == bits


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_install_steps_let_the_service_user_read_its_config_only(doc: str) -> None:
    service = directives(UNIT.read_text())["Service"]
    user, group = service["User"][0], service["Group"][0]
    config = Path(service["ExecStart"][0].split()[3])
    env_file = service["EnvironmentFile"][0].lstrip("-")
    paths = installed_paths(SYSTEMD.parent / doc)
    assert grants(paths[str(config.parent)], user, group, 0o5), "titan cannot enter /etc/titan"
    assert grants(paths[str(config)], user, group, 0o4), "titan cannot read its config"
    assert not grants(paths[str(config)], user, group, 0o2)  # but not change it
    owner, _, mode = paths[env_file]  # systemd reads EnvironmentFile as root
    assert owner == "root" and mode & 0o077 == 0
