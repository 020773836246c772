"""projection stage."""
