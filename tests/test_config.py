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


def test_a_plan_the_devices_cannot_decide_is_refused_with_the_reason(tmp_path: Path) -> None:
    """A home with contact sensors only (cupboards, fridge, inner doors, as in the real
    datasets) and no bed sensor: in_bed cannot be decided, and without an exterior door
    neither can in_apartment. With the front door, in_apartment can; a motion sensor over
    the bed (`bed: true`) is a bed sensor; `bed` on a contact sensor is refused."""
    reg = registry(1, consent=["contact", "motion", "bed"])
    res = reg["residents"][0]
    res["devices"] = [
        {"id": "fridge", "profile": "zigbee2mqtt.contact", "source": "zigbee2mqtt/fridge",
         "room": "kitchen"},
        {"id": "cupboard", "profile": "zigbee2mqtt.contact",
         "source": "zigbee2mqtt/cupboard", "room": "kitchen", "bed": True}]
    res["supervision"] = {"checks": ["23:00"], "all_well": ["in_bed", "in_apartment"]}
    cfg = write_config(tmp_path, "mqtt://b:1883", "sqlite:///x.db", reg=reg)
    r = tillsyn("check-config", str(cfg))
    assert r.returncode == 2
    assert "devices.1.bed: value True: only a motion sensor can be the bed sensor" in r.stderr
    assert "all_well.0: value 'in_bed': needs a bed sensor" in r.stderr
    assert "all_well.1: value 'in_apartment': needs an exterior door sensor" in r.stderr
    res["devices"][1] = {"id": "bed-pir", "profile": "zigbee2mqtt.occupancy",
                         "source": "zigbee2mqtt/bed-pir", "room": "bedroom", "bed": True}
    res["devices"].append({"id": "door", "profile": "zigbee2mqtt.contact",
                           "source": "zigbee2mqtt/door", "room": "entrance",
                           "exterior": True})
    cfg = write_config(tmp_path, "mqtt://b:1883", "sqlite:///x.db", reg=reg)
    r = tillsyn("check-config", str(cfg))
    assert r.returncode == 0, r.stderr


def test_resident_alert_settings_must_fit_the_sites(tmp_path: Path) -> None:
    reg = registry(1)
    reg["residents"][0]["alerts"] = {"bed_exit_moving_minutes": 50}  # site still: 40
    cfg = write_config(tmp_path, "mqtt://b:1883", "sqlite:///x.db", reg=reg)
    r = tillsyn("check-config", str(cfg))
    assert r.returncode == 2
    assert "residents.0.alerts" in r.stderr and "bed_exit_still_minutes (40)" in r.stderr
    reg["residents"][0]["alerts"] = {"rise_time": "5:00"}
    cfg = write_config(tmp_path, "mqtt://b:1883", "sqlite:///x.db", reg=reg)
    r = tillsyn("check-config", str(cfg))
    assert r.returncode == 2 and "rise_time" in r.stderr


def test_empty_files_missing_tls_files_and_zero_durations_are_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("")
    r = tillsyn("check-config", str(cfg))
    assert r.returncode == 2 and f"{cfg}: the file is empty" in r.stderr
    reg = tmp_path / "r.yaml"
    for text, wanted in (("", "the file is empty"),
                         ("units: []\nresidents: []\n", "units: the registry names no unit"),
                         ("units: [{id: u, name: U}]\n",
                          "residents: the registry names no resident")):
        reg.write_text(text)
        cfg.write_text("registry: {path: r.yaml}\n")
        r = tillsyn("check-config", str(cfg))
        assert r.returncode == 2 and wanted in r.stderr, (text, r.stderr)
    write_config(tmp_path, "mqtts://b:8883", "sqlite:///x.db", mqtt={"ca_file": "ca.pem"})
    r = tillsyn("check-config", str(tmp_path / "config.yaml"))
    assert r.returncode == 2
    assert "mqtt.ca_file: value 'ca.pem': file not found" in r.stderr
    for key, section in (("max_clock_ahead_seconds", "site"),
                         ("max_clock_behind_days", "site"),
                         ("session_expiry_seconds", "mqtt")):
        write_config(tmp_path, "mqtt://b:1883", "sqlite:///x.db", **{section: {key: 0}})
        r = tillsyn("check-config", str(tmp_path / "config.yaml"))
        assert r.returncode == 2 and f"{section}.{key}: value 0" in r.stderr, r.stderr
