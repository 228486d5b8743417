"""What jupyterhub-mlteams runs in the hub.

``policy`` is pure (decisions from data); ``spawner``, ``auth`` and ``provisioning`` are the
adapters to KubeSpawner, OAuthenticator and the Kubernetes API; ``settings`` holds the hub's
configuration sections.
"""

__version__ = "0.1.0"
