"""Simulated devices that publish exactly what real ones do, and a home simulator."""
