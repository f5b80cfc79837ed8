"""The nightly portfolio run: chunks, run folders, the report, monitoring and the Spark engine."""
