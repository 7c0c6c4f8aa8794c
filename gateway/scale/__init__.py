"""Several workers sharing one site: leases, the database feed, the worker wiring."""
