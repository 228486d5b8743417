"""Hub-side parts of jupyterhub-mlteams: the team spawner, authenticator and service."""

__version__ = "0.1.0"
