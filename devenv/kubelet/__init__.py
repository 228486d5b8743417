"""The process kubelet: development tooling that plays the nodes of the local platform.

One long-running process (``python -m devenv.kubelet --kubeconfig PATH --state-dir DIR``)
registers fake nodes (by default ``cpu-0`` and the GPU nodes ``gpu-0``/``gpu-1`` with four
``nvidia.com/gpu`` each, see ``node_config``), keeps them Ready with leases and status updates,
and runs every pod the scheduler binds to them as local processes:

* each container is one process started from its ``command``/``args`` (the image is only
  recorded; the program comes from the local environment, with the kubelet's own virtualenv
  ``bin`` first on ``PATH``, preceded by ``--pod-bin`` when given: the cluster passes the rig's
  notebook image environment, a Python with a user site like the notebook image's, see
  ``devenv.notebook_image``), in a private mount namespace where the pod's volumes are
  bind-mounted at their mount paths;
* each pod gets its own loopback address ``127.(10+n).x.y`` from a /16 per node, reported as
  ``status.podIP``. All pods share the host's network, so a process binding the wildcard address
  would collide with every other pod on the same port: the kubelet therefore **rewrites the
  literal ``0.0.0.0`` in environment values, commands and arguments to the pod's address**
  (``0.0.0.0/n`` networks are left alone, as are ``hostNetwork`` pods). A JupyterHub single-user
  server told to listen on ``http://0.0.0.0:8888`` thus listens on its pod address, port 8888;
* volumes are local directories under the state directory (emptyDir per pod, one directory per
  PersistentVolumeClaim that outlives pods, ConfigMap/Secret/downward API/projected contents
  written as files, hostPath as is); claims of the StorageClass ``process-kubelet-local``, which
  the kubelet registers as the default class, are provisioned by the kubelet (see ``storage``);
* status, conditions, container statuses and events are reported as a kubelet reports them;
  deletion is graceful (SIGTERM, grace period, SIGKILL, then the pod object is removed).

Container output goes to ``<state-dir>/pods/<namespace>_<pod>_<uid>/<container>.log``; the full
layout of the state directory is described in ``layout``. With ``--on-exit keep`` the pod
processes outlive the kubelet and the next one adopts them.
"""
