"""Load and validate configuration files in one place: the only code that reads them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from gateway.config.gateway import GatewayConfig, ScaipConfig
from gateway.config.registry import Registry
from gateway.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

ENV_SECRETS = {
    ("mqtt", "password"): "TILLSYN_MQTT_PASSWORD",
    ("api", "token_secret"): "TILLSYN_API_TOKEN_SECRET",
    ("storage", "influxdb", "token"): "TILLSYN_INFLUX_TOKEN",
}


def read_yaml(path: Path) -> Any:
    """Read a YAML file, turning every failure into a one-line ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}:{where}: invalid YAML: {problem}"]) from None


def validate(model: type[M], data: Any, path: Path | str) -> M:
    """Validate data against a model, reporting each problem as file: key: value: reason."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: top level must be a mapping, got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, path)) from None


def format_errors(exc: ValidationError, path: Path | str) -> list[str]:
    """One line per problem: file, key path, value and reason."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: {loc}: unknown key")
        elif err["type"] == "missing":
            lines.append(f"{path}: {loc}: required key is missing")
        elif err["type"] == "value_error" and "value " in msg and ": " in msg:
            # Cross-field validators already name key paths; one line each.
            for part in msg.split("; "):
                lines.append(f"{path}: {part}")
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            if len(shown) > 80:
                shown = shown[:77] + "..."
            lines.append(f"{path}: {loc}: value {shown}: {msg}")
    return lines


def load_config(path: Path | str, env: dict[str, str] | None = None) -> GatewayConfig:
    """Load the gateway configuration; secrets come from environment variables."""
    path = Path(path)
    environ = dict(os.environ) if env is None else env
    data = read_yaml(path)
    if data is None:
        raise ConfigError([f"{path}: the file is empty: a configuration names at least "
                           "mqtt.url, storage.url, api.port, site.id and registry.path"])
    if isinstance(data, dict):
        for keys, var in ENV_SECRETS.items():
            if var in environ:
                _put_secret(data, keys, environ[var])
    config = validate(GatewayConfig, data, path)
    if config.registry.path is not None:
        reg = beside_config(config.registry.path, path)
        if not reg.exists():
            raise ConfigError([f"{path}: registry.path: value {config.registry.path!r}: "
                               f"file not found ({reg})"])
    if config.mqtt.ca_file is not None:
        ca = beside_config(config.mqtt.ca_file, path)
        if not ca.is_file():
            raise ConfigError([f"{path}: mqtt.ca_file: value {config.mqtt.ca_file!r}: "
                               f"file not found ({ca})"])
        # Relative to the configuration file, as every path in it: used as resolved here.
        config = config.model_copy(update={"mqtt": config.mqtt.model_copy(
            update={"ca_file": str(ca)})})
    if config.scaip.centres or config.scaip.mapping_file:
        config = config.model_copy(update={"scaip": _scaip(config, path, environ)})
    return config


def _scaip(config: GatewayConfig, path: Path, environ: dict[str, str]) -> ScaipConfig:
    """Centre passwords from the environment; files relative to the configuration."""
    problems = []
    centres = []
    for i, centre in enumerate(config.scaip.centres):
        update: dict[str, Any] = {}
        var = f"TILLSYN_SCAIP_PASSWORD_{centre.id.upper().replace('-', '_')}"
        secret = environ.get(var) or environ.get("TILLSYN_SCAIP_PASSWORD")
        if centre.password is None and secret:
            update["password"] = SecretStr(secret)
        if centre.username and centre.password is None and not secret:
            problems.append(f"{path}: scaip.centres.{i}.password: required key is missing "
                            f"(user {centre.username!r}; set {var} or TILLSYN_SCAIP_PASSWORD)")
        if centre.ca_file is not None:
            ca = beside_config(centre.ca_file, path)
            if not ca.is_file():
                problems.append(f"{path}: scaip.centres.{i}.ca_file: value "
                                f"{centre.ca_file!r}: file not found ({ca})")
            update["ca_file"] = str(ca)
        if centre.transport == "tcp" and centre.uri.startswith("sips:"):
            problems.append(f"{path}: scaip.centres.{i}.uri: value {centre.uri!r}: a sips: "
                            "URI needs transport tls")
        centres.append(centre.model_copy(update=update))
    mapping = config.scaip.mapping_file
    if mapping is not None:
        file = beside_config(mapping, path)
        if not file.is_file():
            problems.append(f"{path}: scaip.mapping_file: value {mapping!r}: file not found "
                            f"({file})")
        mapping = str(file)
    if problems:
        raise ConfigError(problems)
    return config.scaip.model_copy(update={"centres": centres, "mapping_file": mapping})


def _put_secret(data: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    """Set a secret from the environment at a key path. A missing top-level section is
    made; a missing deeper one (an optional block such as storage.influxdb) is not."""
    block = data
    for depth, key in enumerate(keys[:-1]):
        inner = block.get(key)
        if inner is None:
            if depth > 0:
                return
            inner = block[key] = {}
        if not isinstance(inner, dict):
            return
        block = inner
    block[keys[-1]] = value


def registry_path(config: GatewayConfig, config_path: Path | str) -> Path | None:
    """Absolute path of the registry named in the config, if any."""
    if config.registry.path is None:
        return None
    return beside_config(config.registry.path, config_path)


def beside_config(path: str, config_path: Path | str | None) -> Path:
    """A path named in the configuration: absolute, or relative to the config file."""
    p = Path(path)
    return p if p.is_absolute() or config_path is None else Path(config_path).parent / p


def load_registry(path: Path | str) -> Registry:
    """Load and validate a registry file: it names at least one unit and one resident (a
    site without either has nothing to watch, which is a mistake, not a quiet night)."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        raise ConfigError([f"{path}: the file is empty: a registry names at least one unit "
                           "and one resident"])
    registry = validate(Registry, data, path)
    problems = []
    if not registry.units:
        problems.append(f"{path}: units: the registry names no unit")
    if not registry.residents:
        problems.append(f"{path}: residents: the registry names no resident")
    if problems:
        raise ConfigError(problems)
    return registry


def secret(value: SecretStr | None) -> str | None:
    """Unwrap an optional secret."""
    return None if value is None else value.get_secret_value()
