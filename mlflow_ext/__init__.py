"""The mlteams plugin of the MLflow server (``mlflow server --app-name mlteams``).

It runs in the MLflow server's process, beside MLflow's basic-auth app: ``identity`` lets notebook
servers sign in with their JupyterHub token, ``guard`` keeps governed registered models to the
promotion service, ``app`` puts both into MLflow's app.
"""
