"""The HTTP service and the credit officer's page, over the scoring core."""
