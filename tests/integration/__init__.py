"""tests/integration package."""
