"""IBIC: needs, goals, measured indicators, follow-up and reports (SPEC section 9)."""
