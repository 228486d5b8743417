"""The hub-managed ``mlteams`` service (an adapter beside the spawner and the authenticator).

It holds the hub permissions users are not given and applies the team policy before using them:
sharing a user's server with a teammate or a team (``hub_ext.policy.sharing``). The hub starts it
from ``hub_config.configure_service(c)``; ``mlteams-service`` runs it.
"""
