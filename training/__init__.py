"""Model fitting, calibration, evaluation and MLflow tracking."""
