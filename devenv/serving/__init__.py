"""The local platform's serving controller: KServe InferenceServices made real on the rig.

There is no KServe on the local platform. ``devenv.serving.crds`` installs KServe's published
CRDs and its MLServer ClusterServingRuntime into the rig's apiserver (so the apiserver validates
every InferenceService against KServe's schema), and ``python -m devenv.serving`` reconciles
``serving.kserve.io/v1beta1`` InferenceServices the way KServe does in RawDeployment mode: one
predictor pod per InferenceService, owned by it, with the ``storage-initializer`` init container
(``devenv.serving.storage_initializer``) downloading ``storageUri`` into ``/mnt/models`` with the
credentials of the predictor's service account, and the ``kserve-container`` running MLServer
from ``.venv-mlserver`` (``devenv.serving.environment``); the InferenceService's status follows
the pod.

The decisions are pure (``predictor``, ``runtimes``, ``credentials``, ``pods``, ``status``,
``reconcile``); ``controller`` holds the Kubernetes calls.
"""
