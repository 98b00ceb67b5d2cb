"""Authentication, authorization and per-role data sanitisation."""
