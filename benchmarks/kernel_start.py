"""Kernel start benchmark: with and without the mlteams kernel hook.

Starts an IPython kernel repeatedly and measures the time from launch to the first
``kernel_info`` reply. "with" is a team server's kernel: this environment's Python, where the
installed package's startup file (``{sys.prefix}/etc/ipython/startup/50-mlteams-kernel-hook.py``)
loads ``server_ext.kernel.hook``, and the tracking variables are set. "without" is the same Python
and the same packages through an environment of its own whose prefix has no such startup file, so
the hook is not loaded. Starts are interleaved so both see the same load. Prints both medians and
their ratio (the hook must not import MLflow or pandas at start; aim: <= 1.05).

Run: ``.venv/bin/python -m benchmarks.kernel_start [--starts 20]`` (not part of the test suite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from devenv.procs import free_port

STARTUP_FILE = Path(sys.prefix, "etc", "ipython", "startup", "50-mlteams-kernel-hook.py")
WITHOUT_KERNEL = "mlteams-bench-without-hook"


def environment_without_hook(root: Path) -> KernelSpecManager:
    """A kernel spec whose Python sees this environment's packages from a prefix of its own,
    which has no IPython startup files."""
    prefix = root / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(prefix)
    python = prefix / "bin" / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = prefix / "lib" / version / "site-packages"
    (site_packages / "mlteams_bench_overlay.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n"
    )
    spec = root / "kernels" / WITHOUT_KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (no mlteams startup file)",
                "language": "python",
            }
        )
    )
    return KernelSpecManager(kernel_dirs=[str(root / "kernels")])


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


def one_start(without_specs: KernelSpecManager | None) -> tuple[float, bool]:
    """Seconds to the first kernel_info reply, and whether the hook was loaded. The kernel is
    this environment's ``python3`` unless ``without_specs`` is given."""
    if without_specs is None:
        km = KernelManager(kernel_name="python3")
    else:
        km = KernelManager(kernel_name=WITHOUT_KERNEL, kernel_spec_manager=without_specs)
    start = time.perf_counter()
    km.start_kernel(env=team_env())
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
        loaded, heavy_loaded = (w == "True" for w in "".join(outputs).split())
        if heavy_loaded:
            raise SystemExit("the kernel imported MLflow or pandas at start")
        return elapsed, loaded
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="kernel starts per variant")
    args = parser.parse_args(argv)
    if not STARTUP_FILE.is_file():
        raise SystemExit(f"{STARTUP_FILE} is missing: install the package (pip install -e .)")
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="mlteams-bench-") as tmp:
        variants = {True: None, False: environment_without_hook(Path(tmp))}
        one_start(variants[True])
        one_start(variants[False])
        for _ in range(max(args.starts, 1)):
            for with_hook in (False, True):
                elapsed, loaded = one_start(variants[with_hook])
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
