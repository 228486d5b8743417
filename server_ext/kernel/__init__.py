"""What runs inside each kernel: MLflow auto-tracking, run context and dataset lineage.

Nothing here imports MLflow or pandas at kernel start; they load when the notebook uses them.
"""
