"""Development tooling: the local platform (control plane, process kubelet, hub and demo)."""
