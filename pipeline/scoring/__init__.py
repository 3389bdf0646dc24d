"""Customer scoring: customer-day aggregates, customer state, RFM segments and clusters."""
