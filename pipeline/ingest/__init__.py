"""Ingest: one logical date of sales exports (and the optional customer master) into the lake."""
