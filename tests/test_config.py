"""Configuration, registry and profile validation: one clear line per problem, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config.loader import load_config, load_registry
from gateway.errors import ConfigError
from gateway.profiles.loader import load_profiles
from tests.homes import registry, write_config
from tests.support import tillsyn


def test_minimal_config_names_five_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    (tmp_path / "r.yaml").write_text("units: []\n")
    path.write_text("mqtt: {url: 'mqtt://broker:1883'}\nstorage: {url: 'sqlite:///x.db'}\n"
                    "api: {port: 8080}\nsite: {id: lund-1}\nregistry: {path: r.yaml}\n")
    cfg = load_config(path, env={})
    assert cfg.mqtt.host == "broker"
    assert cfg.mqtt.port == 1883
    assert cfg.site.timezone == "Europe/Stockholm"
    assert cfg.site.alerts.escalation_seconds == 120


def test_secrets_come_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("mqtt: {url: 'mqtts://b:8883', username: gw}\n")
    cfg = load_config(path, env={"TILLSYN_MQTT_PASSWORD": "s3cret",
                                 "TILLSYN_API_TOKEN_SECRET": "k"})
    assert cfg.mqtt.password is not None
    assert cfg.mqtt.password.get_secret_value() == "s3cret"
    assert cfg.mqtt.tls
    assert cfg.mqtt.port == 8883
    assert "s3cret" not in repr(cfg)


def test_check_config_ok(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883", f"sqlite:///{tmp_path}/t.db")
    result = tillsyn("check-config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


def test_check_config_reports_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mqtt: {url: 'http://x:1883', clientid: a}\nsite: {timezone: Mars/Base}\n"
                    "api: {port: 99999}\n")
    result = tillsyn("check-config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{path}: mqtt.url: value 'http://x:1883': must start with mqtt:// or mqtts://" in lines
    assert f"{path}: mqtt.clientid: unknown key" in lines
    assert any(ln.startswith(f"{path}: site.timezone: value 'Mars/Base'") for ln in lines)
    assert any(ln.startswith(f"{path}: api.port: value 99999") for ln in lines)
    assert len(lines) == 4


def test_check_config_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mqtt: {url: [\n")
    result = tillsyn("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}: line")
    assert "invalid YAML" in result.stderr


def test_registry_problems_name_key_paths(tmp_path: Path) -> None:
    reg = registry(2)
    reg["residents"][1]["unit"] = "unit-x"
    reg["residents"][1]["devices"][0]["id"] = "hall-pir-0"
    reg["residents"][0]["devices"][1]["profile"] = "zigbee2mqtt.doorbell"
    reg["residents"][0]["consent"].append("thoughts")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(reg))
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    text = "\n".join(exc.value.problems)
    assert "residents.0.consent.7: value 'thoughts'" in text
    reg["residents"][0]["consent"].pop()
    path.write_text(yaml.safe_dump(reg))
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    assert f"{path}: residents.1.unit: value 'unit-x': no such unit" in exc.value.problems
    assert (f"{path}: residents.1.devices.0.id: value 'hall-pir-0': duplicate"
            in exc.value.problems)
    result = tillsyn("registry", "load", str(path))
    assert result.returncode == 2
    reg["residents"][1]["unit"] = "unit-a"
    reg["residents"][1]["devices"][0]["id"] = "hall-pir-x"
    path.write_text(yaml.safe_dump(reg))
    result = tillsyn("registry", "load", str(path))
    assert result.returncode == 2
    assert (f"{path}: residents.0.devices.1.profile: value 'zigbee2mqtt.doorbell': "
            "unknown profile") in result.stderr


def test_registry_load_summary(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(registry(3)))
    result = tillsyn("registry", "load", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK: 1 units, 2 staff, 3 residents, 15 devices"


def test_every_shipped_profile_loads() -> None:
    lib = load_profiles()
    for required in ("zigbee2mqtt.occupancy", "zigbee2mqtt.contact", "zigbee2mqtt.vibration",
                     "zigbee2mqtt.lock", "owntracks.location", "tillsyn.native",
                     "chirpstack.milesight-ws301", "tts.milesight-ws301"):
        assert required in lib.profiles


def test_invalid_profile_is_refused_with_file_and_field(tmp_path: Path) -> None:
    for src in Path("device_profiles").glob("*.yaml"):
        (tmp_path / src.name).write_text(src.read_text())
    bad = tmp_path / "acme.yaml"
    bad.write_text(yaml.safe_dump({"family": "acme", "profiles": [{
        "id": "acme.pir", "description": "x", "report_interval_seconds": 60,
        "kinds": ["motion", "telepathy"],
        "channels": [{"suffix": "", "decoder": "acme.magic"}]}]}))
    with pytest.raises(ConfigError) as exc:
        load_profiles(tmp_path)
    assert any(p.startswith(f"{bad}: profiles.0.kinds: value") and "telepathy" in p
               for p in exc.value.problems)
    bad.write_text(yaml.safe_dump({"family": "acme", "profiles": [{
        "id": "acme.pir", "description": "x", "report_interval_seconds": 60,
        "kinds": ["motion"], "channels": [{"suffix": "", "decoder": "acme.magic"}]}]}))
    with pytest.raises(ConfigError) as exc:
        load_profiles(tmp_path)
    assert exc.value.problems[0].startswith(
        f"{bad}: profiles.0.channels.0.decoder: value 'acme.magic': no such decoder")


def test_run_refuses_invalid_registry_source(tmp_path: Path) -> None:
    reg = registry(1)
    reg["residents"][0]["devices"][4]["source"] = "owntracks/only-two-levels"
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg)
    result = tillsyn("run", "--config", str(cfg))
    assert result.returncode == 2
    assert "residents.0.devices.4.source: value 'owntracks/only-two-levels': does not fit " \
           "profile owntracks.location" in result.stderr
