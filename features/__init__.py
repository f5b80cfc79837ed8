"""Ledger data contract, synthetic data, adapters and point-in-time features."""
