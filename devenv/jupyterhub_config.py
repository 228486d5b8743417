"""JupyterHub configuration of the local platform (``make demo`` and the integration tests).

Everything machine-specific arrives in ``MLTEAMS_HUB_*`` environment variables set by
``devenv.hub``; the hub spawns servers with KubeSpawner as pods on the local cluster.
"""

import json
import os

import yaml

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)
env = os.environ

state_dir = env["MLTEAMS_HUB_STATE_DIR"]
c.JupyterHub.bind_url = env["MLTEAMS_HUB_PUBLIC_URL"]
c.JupyterHub.hub_bind_url = env["MLTEAMS_HUB_API_URL"]
c.JupyterHub.hub_connect_url = env["MLTEAMS_HUB_API_URL"]
c.ConfigurableHTTPProxy.api_url = env["MLTEAMS_PROXY_API_URL"]
c.ConfigurableHTTPProxy.command = [env["MLTEAMS_PROXY_COMMAND"]]
c.ConfigurableHTTPProxy.auth_token = env["MLTEAMS_PROXY_TOKEN"]
c.ConfigurableHTTPProxy.pid_file = os.path.join(state_dir, "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{os.path.join(state_dir, 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret_file = os.path.join(state_dir, "cookie_secret")
c.JupyterHub.pid_file = os.path.join(state_dir, "jupyterhub.pid")
c.JupyterHub.log_level = env.get("MLTEAMS_HUB_LOG_LEVEL", "INFO")
c.JupyterHub.cleanup_servers = env.get("MLTEAMS_HUB_CLEANUP_SERVERS", "1") == "1"

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = env["MLTEAMS_DEMO_PASSWORD"]
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}

if env.get("MLTEAMS_HUB_AUTH") == "oidc":
    # TeamOAuthenticator against the local OIDC provider (devenv/oidc), URLs from its discovery
    from devenv.hub_auth import configure_oidc

    configure_oidc(c, env, state_dir)

if env.get("MLTEAMS_TEST_TOKEN"):
    c.JupyterHub.services = [{"name": "mlteams-tests", "api_token": env["MLTEAMS_TEST_TOKEN"]}]
    c.JupyterHub.load_roles = [
        {
            "name": "mlteams-tests",
            "scopes": [
                "admin:users",
                "admin:servers",
                "access:servers",
                "read:hub",
                "admin:groups",
            ],
            "services": ["mlteams-tests"],
        }
    ]

# as in the z2jh chart (hub.consecutiveFailureLimit): the hub exits after 5 spawn errors in a row
# (the burst benchmark sets 0, no limit: stock KubeSpawner's quota refusals count as errors)
c.Spawner.consecutive_failure_limit = int(env.get("MLTEAMS_HUB_CONSECUTIVE_FAILURE_LIMIT", "5"))
if env.get("MLTEAMS_HUB_CONCURRENT_SPAWN_LIMIT"):
    # the burst benchmark lets every one of its spawn requests reach the spawner (the hub's
    # default, 100 pending spawns, answers the rest 429 before any spawner sees them)
    c.JupyterHub.concurrent_spawn_limit = int(env["MLTEAMS_HUB_CONCURRENT_SPAWN_LIMIT"])
c.JupyterHub.spawner_class = env.get("MLTEAMS_HUB_SPAWNER", "kubespawner.KubeSpawner")
if env.get("MLTEAMS_TEAMS_FILE"):
    # the same mapping an admin writes under hub.config.MLTeams in the z2jh values
    with open(env["MLTEAMS_TEAMS_FILE"]) as f:
        for key, value in (yaml.safe_load(f) or {}).items():
            setattr(c.MLTeams, key, value)
    from hub_ext.provisioning.startup import at_hub_start

    at_hub_start(c)
if env.get("MLTEAMS_TRACKING_URI"):
    # what an admin writes under hub.config.MLTeamsTracking: the MLflow server and the store
    c.MLTeamsTracking.tracking_uri = env["MLTEAMS_TRACKING_URI"]
    c.MLTeamsTracking.object_store_endpoint = env.get("MLTEAMS_OBJECT_STORE_URL", "")
if env.get("MLTEAMS_HUB_GROUPS"):
    c.JupyterHub.load_groups = json.loads(env["MLTEAMS_HUB_GROUPS"])
c.KubeSpawner.namespace = env["MLTEAMS_HUB_NAMESPACE"]
c.KubeSpawner.image = "mlteams/notebook:dev"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.start_timeout = 180
c.KubeSpawner.http_timeout = 120
c.KubeSpawner.working_dir = "/home/jovyan"
# Every server's home is a persistent volume claim, as the z2jh chart renders singleuser.storage
# (type dynamic) for KubeSpawner: created on first spawn (in the team's namespace with
# TeamKubeSpawner), kept when the server stops. The rig's kubelet provisions claims of its
# default StorageClass (process-kubelet-local) as local folders.
c.KubeSpawner.storage_pvc_ensure = True  # singleuser.storage.type: dynamic
c.KubeSpawner.storage_capacity = env.get("MLTEAMS_HOME_CAPACITY", "10Gi")  # .capacity
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]  # .dynamic.storageAccessModes
# .dynamic.storageClass left unset: the cluster's default StorageClass;
# .dynamic.pvcNameTemplate left unset: KubeSpawner's claim-{user_server}
c.KubeSpawner.volumes = [
    {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
]
c.KubeSpawner.volume_mounts = [
    {"name": "volume-{user_server}", "mountPath": "/home/jovyan"}  # .homeMountPath
]
if env.get("MLTEAMS_HUB_HOME") == "scratch":
    # a home that goes with the pod: the spawn benchmark measures the spawners, not the
    # provisioning of 200 claims by the kubelet
    c.KubeSpawner.storage_pvc_ensure = False
    c.KubeSpawner.volumes = [{"name": "home", "emptyDir": {}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
c.KubeSpawner.environment = {"HOME": "/home/jovyan"}
if env.get("MLTEAMS_HUB_PROFILE_LIST"):
    # stock KubeSpawner's own choices (the burst benchmark's CPU and 1-GPU profiles), as an
    # admin writes them under singleuser.profileList in the z2jh values
    c.KubeSpawner.profile_list = json.loads(env["MLTEAMS_HUB_PROFILE_LIST"])
# The process kubelet runs every container as root on the host (the project's interpreter may live
# in root's home), so the single-user server is told that root is expected here.
c.KubeSpawner.args = ["--allow-root"]
if env.get("MLTEAMS_HUB_SERVER_CMD"):
    # a stand-in for the single-user server (the spawn benchmark serves files with Python's
    # http.server: the hub's readiness check accepts any HTTP answer)
    c.KubeSpawner.cmd = json.loads(env["MLTEAMS_HUB_SERVER_CMD"])
    c.KubeSpawner.args = []
if env.get("MLTEAMS_TEAMS_FILE"):  # the mlteams service: sharing and promotion (docs/admin/)
    from hub_ext.service.hub_config import configure_service

    # the service's database beside the hub's (in the chart: the hub's volume)
    os.environ.setdefault(
        "MLTEAMS_SERVICE_DB_URL", f"sqlite:///{os.path.join(state_dir, 'mlteams-service.sqlite')}"
    )

    configure_service(c, keep_env=["MLTEAMS_RIG"])
    if env.get("MLTEAMS_HUB_AUTH") != "oidc":
        # the hub's own login manages no roles: the team leads' roles (with the admin pages)
        # are declared here, as TeamOAuthenticator declares them at every start
        from hub_ext.service.hub_config import lead_page_roles

        c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, *lead_page_roles(c)]
