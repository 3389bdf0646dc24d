"""Tests of the demo data generator."""
