"""Rules: per-tenant detection rules evaluated on ingested telemetry and on timers."""
