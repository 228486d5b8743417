"""Development tooling: the local platform (a real Kubernetes control plane, a process kubelet, and the demo)."""
