"""Scoring core, limits, the BentoML service, batch scoring and the CLI."""
