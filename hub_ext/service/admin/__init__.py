"""The admin pages of the ``mlteams`` service and their JSON API: teams, live GPU use, quota
overrides and requests, stopping servers, approvals, and the audit trail."""
