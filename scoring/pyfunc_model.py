"""The code MLflow logs as a creditguard model (models-from-code); MLflow runs it to load one.

Only MLflow imports this file: declaring the model is its whole job.
"""

from mlflow.models import set_model

from scoring.pyfunc import CreditModel

set_model(CreditModel())
