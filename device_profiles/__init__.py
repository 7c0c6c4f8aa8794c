"""Device profiles: YAML data (docs/devices.md), not code.

The folder is a package only so that a wheel (`pip install .`, the container image)
carries the YAML files next to `gateway/`, where the profile loader looks for them.
"""
