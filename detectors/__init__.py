"""Pure detectors and the fall-risk model: no I/O, no database, no MQTT."""
