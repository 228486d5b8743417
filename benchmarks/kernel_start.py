"""Kernel start benchmark: with and without the mlteams kernel hook.

Starts an IPython kernel repeatedly and measures the time from launch to the first
``kernel_info`` reply. "with" is a team server's kernel (the shipped configuration loads
``server_ext.kernel.hook`` and the tracking variables are set); "without" overrides the shipped
configuration so the hook is not loaded. Starts are interleaved so both see the same load.
Prints both medians and their ratio (the hook must not import MLflow at start; aim: <= 1.05).

Run: ``.venv/bin/python -m benchmarks.kernel_start [--starts 20]`` (not part of the test suite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from jupyter_client.manager import KernelManager

from devenv.procs import free_port

HOOK_OFF = ["--InteractiveShellApp.extra_extensions=[]"]


def team_env() -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "MLTEAMS_TRACKING": "1",
        "MLTEAMS_TEAM": "bench",
        "JUPYTERHUB_USER": "bench",
        "MLTEAMS_PROFILE": "cpu",
        # a team with a dataset: the hook also watches for pandas and fsspec (lineage)
        "MLTEAMS_DATASETS": json.dumps(
            [{"name": "iris", "uri": "s3://team-bench/iris/iris.csv", "format": "csv"}]
        ),
    }


def one_start(with_hook: bool) -> tuple[float, bool]:
    """Seconds to the first kernel_info reply, and whether the hook was loaded."""
    km = KernelManager(kernel_name="python3")
    start = time.perf_counter()
    km.start_kernel(env=team_env(), extra_arguments=[] if with_hook else HOOK_OFF)
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        elapsed = time.perf_counter() - start
        code = (
            "import sys; print('server_ext.kernel.hook' in sys.modules, "
            "'mlflow' in sys.modules or 'pandas' in sys.modules)"
        )
        loaded = False
        outputs: list[str] = []
        client.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda m: outputs.append(m["content"].get("text", "")),
        )
        loaded, mlflow_loaded = (w == "True" for w in "".join(outputs).split())
        if mlflow_loaded:
            raise SystemExit("the kernel imported MLflow or pandas at start")
        return elapsed, loaded
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="kernel starts per variant")
    args = parser.parse_args(argv)
    times: dict[bool, list[float]] = {True: [], False: []}
    one_start(True)
    one_start(False)
    for _ in range(max(args.starts, 1)):
        for with_hook in (False, True):
            elapsed, loaded = one_start(with_hook)
            if loaded != with_hook:
                raise SystemExit(f"hook loaded={loaded}, expected {with_hook}")
            times[with_hook].append(elapsed)
    without = statistics.median(times[False])
    with_ = statistics.median(times[True])
    print(f"kernel starts per variant: {args.starts}")
    print(f"without the extension: median {without * 1000:.0f} ms")
    print(f"with the extension:    median {with_ * 1000:.0f} ms")
    print(f"ratio: {with_ / without:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
