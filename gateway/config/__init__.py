"""Configuration: one pydantic tree per file, validated once."""

from gateway.config.gateway import GatewayConfig
from gateway.config.loader import load_config, load_registry
from gateway.config.registry import Registry

__all__ = ["GatewayConfig", "Registry", "load_config", "load_registry"]
