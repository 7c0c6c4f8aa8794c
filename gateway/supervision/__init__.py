"""Digital night supervision: plans, the journal, tonight and the morning summary."""
