"""The Jupyter server extension: the ``/mlteams/`` REST API of a user's server."""
