"""The pyfunc model's code (MLflow "models from code"): MLflow copies this file into the model
folder and runs it when the model is loaded; it names :class:`fmkit_mlflow.pyfunc.FmkitModel`,
so nothing is pickled."""
import mlflow.models

from fmkit_mlflow.pyfunc import FmkitModel

mlflow.models.set_model(FmkitModel())
