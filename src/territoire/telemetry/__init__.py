"""Telemetry: devices, series, decoders, ingestion (HTTP, MQTT, in-process bus), the
observation store with its rollups and lake, and time queries."""
