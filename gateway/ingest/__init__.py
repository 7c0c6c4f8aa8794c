"""MQTT ingest: broker -> decode through profiles -> durable commit -> acknowledge."""
