"""Ingest: one logical date of sales exports into the Parquet lake."""
