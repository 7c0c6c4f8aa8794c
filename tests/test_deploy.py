"""deploy/: the compose file and the Kubernetes manifests, as written.

No container runtime runs on the development machine or in CI, so the files are checked in
three ways: by real parsers (the Compose specification through `compose-spec`, every
Kubernetes object against the API schemas of `kubernetes-validate`, strict: unknown fields
are errors); by cross-checking what they refer to (files, services, ports, labels, mounts
against the gateway configuration); and by running the gateway, outside containers, with
the very configuration and environment the compose file gives it, against a real
Mosquitto started from the compose file's broker configuration and a real PostgreSQL that
asks for a password. What only a container runtime can show (the image builds, the
services find each other by name) is not tested here; docs/deploy.md says so.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import sqlalchemy as sa
import yaml
from compose_spec import PyCompose

from gateway.broker import free_port
from tests.gateway_proc import health
from tests.homes import registry
from tests.mqtt_client import Publisher
from tests.support import (
    ROOT,
    Mosquitto,
    Postgres,
    broker_owned,
    certificates,
    tillsyn,
    wait_for,
)

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "kubernetes"
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((COMPOSE / "compose.yaml").read_text()))


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} from an .env mapping."""
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"{name} required: {arg}")
        return arg
    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", one, value)


def _setting_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


# --- compose -------------------------------------------------------------------------------

def test_compose_file_parses_and_refers_to_what_exists() -> None:
    env_example = {ln.split("=", 1)[0].lstrip("# ").strip()
                   for ln in (COMPOSE / ".env.example").read_text().splitlines()
                   if "=" in ln}
    # As docker compose does: interpolate from .env first, then validate.
    text = _interpolate((COMPOSE / "compose.yaml").read_text(),
                        dict.fromkeys(env_example, "value-from-env"))
    assert sorted(PyCompose.from_yaml(text).service_names()) == [
        "gateway", "grafana", "influxdb", "migrate", "mosquitto", "postgres"]
    spec = _compose()
    services = spec["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):  # a bind mount: in the repository, or made by hand
                made_by_hand = source.startswith("./secrets/")
                assert made_by_hand or (COMPOSE / source).exists(), f"{name}: {source}"
            else:
                assert source in spec["volumes"], f"{name}: unknown volume {source}"
        for var in re.findall(r"\$\{([A-Z0-9_]+)", yaml.safe_dump(svc)):
            assert var in env_example, f"{name} uses {var}, not in .env.example"
    # The secrets folder and .env are never committed.
    ignored = subprocess.run(["git", "check-ignore", "deploy/compose/secrets/x",
                              "deploy/compose/.env"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == ["deploy/compose/secrets/x", "deploy/compose/.env"]
    # The image is the repository's Dockerfile; the optional services are a profile.
    build = services["migrate"]["build"]
    assert (COMPOSE / build["context"] / build["dockerfile"]).is_file()
    assert services["gateway"]["image"] == services["migrate"]["image"]
    assert {n for n, s in services.items() if s.get("profiles")} == {"influxdb", "grafana"}
    # The gateway waits for a successful migration and a healthy broker.
    assert services["gateway"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    # The gateway's config file, as mounted, names the mounted registry and CA, and the
    # port the compose file publishes and the health check asks.
    mounts = dict(m.rsplit(":", 1)[0].split(":", 1)[::-1] for m in
                  services["gateway"]["volumes"])
    assert services["gateway"]["command"][-1] in mounts
    config = yaml.safe_load((COMPOSE / mounts[services["gateway"]["command"][-1]]).read_text())
    assert config["registry"]["path"] in mounts
    assert config["mqtt"]["ca_file"] in mounts
    port = config["api"]["port"]
    assert services["gateway"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(services["gateway"]["healthcheck"]["test"])
    assert config["mqtt"]["url"].split("//")[1].split(":")[0] == "mosquitto"
    assert "@postgres:" in config["storage"]["url"]


def test_compose_broker_config_is_the_production_one() -> None:
    """deploy/compose/mosquitto.conf may differ from deploy/mosquitto/mosquitto.conf only
    in where it keeps its data and where it logs."""
    prod = _setting_lines((DEPLOY / "mosquitto" / "mosquitto.conf").read_text())
    comp = _setting_lines((COMPOSE / "mosquitto.conf").read_text())
    differ = sorted(set(prod) ^ set(comp))
    assert differ == ["log_dest stdout", "log_dest syslog",
                      "persistence_location /mosquitto/data/",
                      "persistence_location /var/lib/mosquitto/"]
    assert len(prod) == len(comp)


def test_grafana_provisioning_fits_the_dashboard() -> None:
    ds = yaml.safe_load((COMPOSE / "grafana" / "datasources" / "influxdb.yaml").read_text())
    source = ds["datasources"][0]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "Flux"
    influx = _compose()["services"]["influxdb"]["environment"]
    assert source["jsonData"]["organization"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert source["jsonData"]["defaultBucket"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    dash = json.loads((DEPLOY / "grafana" / "tillsyn-observations.json").read_text())
    # Provisioned from a file, ${DS_INFLUXDB} resolves through a data-source variable.
    assert {"name": "DS_INFLUXDB", "type": "datasource", "query": "influxdb"}.items() <= \
        dash["templating"]["list"][0].items()


@pytest.mark.broker
@pytest.mark.slow
def test_gateway_runs_with_the_compose_configuration(tmp_path: Path) -> None:
    """The compose file's gateway: its config file and environment, its migrate command
    then its run command, against the compose file's Mosquitto configuration (TLS,
    accounts, ACL) and a PostgreSQL with password authentication."""
    spec = _compose()["services"]
    dotenv = {"POSTGRES_PASSWORD": "pg-pass-for-test", "TILLSYN_API_TOKEN_SECRET": "k" * 40}
    # Secrets as docs/deploy.md makes them: certificates, registry, accounts.
    # Started as root, this broker drops to the 'mosquitto' user (as in the image), which
    # reaches only its own folder (under /tmp), not pytest's private one.
    broker = Mosquitto()
    gateway_port = free_port()
    broker_dir = broker.dir / "secrets"
    certs = certificates(broker_dir, owner="mosquitto")
    reg_file = tmp_path / "registry.yaml"
    reg_file.write_text(yaml.safe_dump(registry(), sort_keys=False))
    # The compose config, with only the addresses a container network would resolve
    # replaced by this machine's, and the container paths by the folders above.
    mounts = {target: source for source, target, *_ in
              (m.split(":") for m in spec["gateway"]["volumes"])}
    config_text = (COMPOSE / mounts["/etc/tillsyn/config.yaml"]).read_text()
    pg = Postgres(password=dotenv["POSTGRES_PASSWORD"])
    api_port = free_port()
    config_text = (config_text
                   .replace("mqtts://mosquitto:8884", f"mqtts://localhost:{gateway_port}")
                   .replace("@postgres:5432/", f"@127.0.0.1:{pg.port}/")
                   .replace("/etc/tillsyn/ca.crt", str(certs["ca.crt"]))
                   .replace("/etc/tillsyn/registry.yaml", str(reg_file))
                   .replace("port: 8000", f"port: {api_port}"))
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    made = tillsyn("devices", "credentials", "--config", str(config), "--out", str(broker_dir))
    assert made.returncode == 0, made.stderr
    with (broker_dir / "credentials.csv").open(newline="") as f:
        passwords = {row["username"]: row["password"] for row in csv.DictReader(f)}
    dotenv["TILLSYN_MQTT_PASSWORD"] = passwords["tillsyn-gateway"]
    conf = (COMPOSE / "mosquitto.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/tillsyn/", f"{broker_dir}/")
            .replace("/mosquitto/data/", f"{broker.dir}/")
            .replace("listener 8883", f"listener {broker.port}")
            .replace("listener 8884", f"listener {gateway_port}")
            .replace("log_dest stdout", f"log_dest file {broker.dir}/mosquitto.log"))
    broker.conf_text = conf
    # As docs/deploy.md says: the password files stay 0600, given to the broker's user.
    broker_owned(broker_dir / "passwd", broker_dir / "passwd-gateway")
    env = {**os.environ, **{k: _interpolate(str(v), dotenv)
                            for k, v in spec["gateway"]["environment"].items()}}
    assert env["PGPASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    gateway = None
    pg.start()
    broker.start()
    try:
        def run(command: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "gateway", *command], env=environ,
                                  capture_output=True, text=True, timeout=120)
        no_password = {k: v for k, v in env.items() if k != "PGPASSWORD"}
        refused = run(spec["migrate"]["command"][:-1] + [str(config)], no_password)
        assert refused.returncode != 0  # the database really asks for the password
        migrated = run(spec["migrate"]["command"][:-1] + [str(config)], env)
        assert migrated.returncode == 0, migrated.stderr
        with (tmp_path / "gw.log").open("wb") as log:
            gateway = subprocess.Popen([sys.executable, "-m", "gateway",
                                        *spec["gateway"]["command"][:-1], str(config)],
                                       env=env, stdout=log, stderr=log)

        wait_for(lambda: health(api_port).get("status") == "ok", 60, what="gateway healthy")
        url = f"mqtts://localhost:{broker.port}"
        with Publisher(url, client_id="pir-0", username="hall-pir-0",
                       password=passwords["hall-pir-0"], ca_file=str(certs["ca.crt"])) as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy": true}')])
        engine = sa.create_engine(pg.url.replace("postgresql://tillsyn@", "postgresql+psycopg"
                                                 f"://tillsyn:{dotenv['POSTGRES_PASSWORD']}@"))
        try:
            def stored() -> int:
                with engine.connect() as conn:
                    return int(conn.execute(sa.text(
                        "SELECT count(*) FROM observations WHERE device_id = 'hall-pir-0'"))
                        .scalar_one())
            wait_for(lambda: stored() == 1, what="the device's message stored")
        finally:
            engine.dispose()
        lines = [json.loads(ln) for ln in (tmp_path / "gw.log").read_text().splitlines()
                 if ln.startswith("{")]
        assert any("MQTT connected" in ln["message"] for ln in lines)  # JSON logs, as set
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        broker.cleanup()
        pg.cleanup()


# --- Kubernetes ----------------------------------------------------------------------------

def _k8s_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = []
    for name in kustomization["resources"]:
        objects += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return objects


def test_kubernetes_manifests_validate_against_the_api() -> None:
    objects = _k8s_objects()
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    for obj in objects:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PodDisruptionBudget",
        "Service"]


def test_kubernetes_manifests_fit_together_and_the_gateway() -> None:
    by_kind = {o["kind"]: o for o in _k8s_objects()}
    deploy = by_kind["Deployment"]
    pod = deploy["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert by_kind["Service"]["spec"]["selector"].items() <= labels.items()
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        spec = by_kind[kind]["spec"]
        selector = spec.get("selector") or spec["podSelector"]
        assert selector["matchLabels"].items() <= labels.items(), kind
    (gateway,) = pod["spec"]["containers"]
    (migrate,) = pod["spec"]["initContainers"]
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert by_kind["Service"]["spec"]["ports"][0]["targetPort"] in ports
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    config = yaml.safe_load(by_kind["ConfigMap"]["data"]["config.yaml"])
    assert config["api"]["port"] == ports["http"]
    assert config["api"]["host"] == "0.0.0.0"
    # The commands are the gateway's, reading the mounted config file.
    assert gateway["args"][:2] == ["run", "--config"]
    assert migrate["args"][:3] == ["db", "upgrade", "--config"]
    mounts = {m["mountPath"]: m for m in gateway["volumeMounts"]}
    assert gateway["args"][-1] in mounts and mounts[gateway["args"][-1]]["subPath"] == \
        "config.yaml"
    assert str(Path(config["registry"]["path"]).parent) in mounts
    assert str(Path(config["mqtt"]["ca_file"]).parent) in mounts
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == by_kind["ConfigMap"]["metadata"]["name"]
    assert all(m["name"] in volumes for m in gateway["volumeMounts"])
    # Several workers need the scaled mode, PostgreSQL and a $share group.
    assert deploy["spec"]["replicas"] >= 2 and config["scale"]["enabled"] is True
    # The image's user (deploy/container/Dockerfile) is the one the pod runs as.
    dockerfile = (DEPLOY / "container" / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+):", dockerfile, re.M)
    assert uid and pod["spec"]["securityContext"]["runAsUser"] == int(uid.group(1))
    assert gateway["image"] == migrate["image"] == \
        yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"][0]["name"]


def test_kubernetes_config_passes_check_config(tmp_path: Path) -> None:
    """The ConfigMap's configuration is accepted by the gateway's own validation (a
    registry file and a CA file stand where the Secrets would be mounted)."""
    text = next(o for o in _k8s_objects() if o["kind"] == "ConfigMap")["data"]["config.yaml"]
    reg = tmp_path / "registry.yaml"
    reg.write_text(yaml.safe_dump(registry(), sort_keys=False))
    ca = tmp_path / "ca.crt"
    ca.write_text("stands for the CA Secret\n")
    path = tmp_path / "config.yaml"
    text = text.replace("/etc/tillsyn/registry/registry.yaml", str(reg)).replace(
        "/etc/tillsyn/ca/ca.crt", str(ca))
    path.write_text(text)
    result = tillsyn("check-config", str(path))
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stdout
    # ... and refuses it with the scaled mode but without the shared group.
    path.write_text(text.replace("shared_group:", "# shared_group:"))
    result = tillsyn("check-config", str(path))
    assert result.returncode == 2 and "shared_group" in result.stderr


def test_systemd_unit_is_valid_and_uses_the_watchdog(tmp_path: Path) -> None:
    """deploy/systemd/tillsyn.service through systemd's own checker (with the install path
    pointed at an executable that exists here), and the settings the watchdog needs."""
    unit = (ROOT / "deploy" / "systemd" / "tillsyn.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert int(settings["WatchdogSec"]) >= 10 and settings["Restart"] == "always"
    copy = tmp_path / "tillsyn.service"
    copy.write_text(unit.replace("/opt/tillsyn/.venv/bin/tillsyn", "/bin/true"))
    r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                       text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if "tillsyn.service" in line and "Documentation" not in line]
    assert problems == [], problems
