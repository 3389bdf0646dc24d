"""Seeded demo data: a simulated retailer's daily sales exports with hidden ground truth."""
