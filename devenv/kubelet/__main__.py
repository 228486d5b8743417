"""Command line of the process kubelet::

python -m devenv.kubelet --kubeconfig PATH --state-dir DIR [--nodes FILE] [--on-exit stop|keep]
                         [--pod-bin DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path

from .addresses import AddressPool
from .api import Kube
from .context import KubeletContext
from .events import EventRecorder
from .kubelet import Kubelet
from .layout import StateLayout
from .node_config import load_nodes
from .podspec import DEFAULT_PATH, inherited_environment

log = logging.getLogger("devenv.kubelet")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.kubelet",
        description="Run the pods bound to a set of fake nodes as local processes.",
    )
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the cluster")
    parser.add_argument("--state-dir", required=True, type=Path, help="where pod state is kept")
    parser.add_argument("--nodes", type=Path, help="JSON file with the nodes to register")
    parser.add_argument(
        "--on-exit",
        choices=("stop", "keep"),
        default="stop",
        help="on SIGTERM/SIGINT, stop all pod processes (default) or keep them for the next "
        "kubelet to adopt",
    )
    parser.add_argument(
        "--pod-bin",
        type=Path,
        help="a bin folder put first on every pod's PATH, before the kubelet's own virtualenv bin "
        "(the cluster passes the rig's notebook image environment, see devenv.notebook_image)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def _lock(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "kubelet.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another kubelet is using {state_dir}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


async def run(args: argparse.Namespace) -> None:
    nodes = load_nodes(args.nodes)
    state_dir = args.state_dir.resolve()
    layout = StateLayout(state_dir)
    kube = await Kube.from_kubeconfig(args.kubeconfig)
    service_host, service_port = kube.service_endpoint()
    ctx = KubeletContext(
        kube=kube,
        events=EventRecorder(kube),
        layout=layout,
        addresses=AddressPool(layout.addresses),
        nodes={spec.name: (index, spec) for index, spec in enumerate(nodes)},
        service_host=service_host,
        service_port=service_port,
        venv_bin=str(Path(sys.executable).parent),
        pod_bin=str(args.pod_bin.resolve()) if args.pod_bin else "",
        host_path=os.environ.get("PATH", DEFAULT_PATH),
        inherited=inherited_environment(dict(os.environ)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "process kubelet starting: api %s, state %s, nodes %s, on exit %s",
        kube.server,
        state_dir,
        ", ".join(n.name for n in nodes),
        args.on_exit,
    )
    await Kubelet(ctx, on_exit=args.on_exit).run(stop)
    log.info("process kubelet stopped")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s kubelet: %(message)s",
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    lock = _lock(args.state_dir)
    try:
        asyncio.run(run(args))
    finally:
        os.close(lock)


if __name__ == "__main__":
    main()
