"""Command line of the serving controller::

python -m devenv.serving --kubeconfig PATH [--kubelet-state-dir DIR] [--mlserver PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from ..kubelet.api import Kube
from ..paths import REPO_ROOT
from .controller import PodLogs, ServingController
from .environment import mlserver_program
from .pods import Programs

log = logging.getLogger("devenv.serving")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.serving",
        description="Reconcile KServe InferenceServices into predictor pods on the local platform.",
    )
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the cluster")
    parser.add_argument(
        "--kubelet-state-dir",
        type=Path,
        help="the process kubelet's state folder: a failed container's status message is then "
        "taken from the end of its log when the kubelet reports none",
    )
    parser.add_argument(
        "--mlserver",
        type=Path,
        default=mlserver_program(),
        help="the mlserver program the kserve-container runs (default .venv-mlserver/bin/mlserver)",
    )
    parser.add_argument(
        "--python",
        type=Path,
        default=Path(sys.executable),
        help="the Python that runs the storage initializer (default: this one)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    kube = await Kube.from_kubeconfig(args.kubeconfig)
    if not args.mlserver.exists():
        log.warning("%s not found: predictor pods cannot start (run make setup)", args.mlserver)
    programs = Programs(
        mlserver=str(args.mlserver), python=str(args.python), pythonpath=str(REPO_ROOT)
    )
    logs = PodLogs(args.kubelet_state_dir.resolve() if args.kubelet_state_dir else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("serving controller starting: api %s, mlserver %s", kube.server, args.mlserver)
    try:
        await ServingController(kube, programs, logs).run(stop)
    finally:
        with contextlib.suppress(Exception):
            await kube.close()
    log.info("serving controller stopped")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s serving: %(message)s",
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
