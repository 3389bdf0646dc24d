"""Daily sales exports to customer segments, lifecycle stages and danger alerts."""
