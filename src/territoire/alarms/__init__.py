"""Alarms: one console for every network, with a lifecycle, history and correlation."""
