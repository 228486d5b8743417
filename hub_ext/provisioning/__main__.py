"""``python -m hub_ext.provisioning``: the same as the ``mlteams-manifests`` command."""

from hub_ext.provisioning.cli import run

run()
