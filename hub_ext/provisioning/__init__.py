"""The hub's edge to the Kubernetes API for the team namespaces.

At hub start, apply or check each team's Namespace, ResourceQuota and RBAC; ``mlteams-manifests``
prints the same objects for GitOps.
"""
