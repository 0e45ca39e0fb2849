"""Territoire: an open-source platform for connected territories."""

__version__ = "0.1.0"
