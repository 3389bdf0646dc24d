"""Lifecycle stages, danger detection and alerts: what follows scoring each day."""
