"""Video bot application: services and wiring."""
