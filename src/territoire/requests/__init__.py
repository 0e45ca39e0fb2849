"""Citizen requests (signalements): report, follow, fix — with an Open311 GeoReport v2 API."""
