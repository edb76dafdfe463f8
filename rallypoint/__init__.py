"""Rallypoint: self-hosted alarm, evacuation and crisis-management platform."""

__version__ = "0.1.0"
