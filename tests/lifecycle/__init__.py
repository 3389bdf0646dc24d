"""Tests of the customer lifecycle."""
