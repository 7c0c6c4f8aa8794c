"""Device profiles: data that says how each device family's messages decode."""
