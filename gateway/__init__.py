"""Tillsyn: welfare-technology monitoring gateway."""

__version__ = "0.1.0"
