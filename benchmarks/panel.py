"""Run panel benchmark: ``GET /mlteams/runs`` against the same query made directly with MLflow.

The JupyterLab side panel lists the runs of the open notebook with ``GET
/mlteams/runs?path=<notebook>&page_size=10``: the server extension looks up the notebook's
experiment (remembered for a while) and asks MLflow for its newest 10 runs
(``tracking_queries.list_runs``, one ``search_runs``). This benchmark starts a real MLflow tracking
server (``devenv.mlflow_server``, with the mlteams plugin), creates the notebook's experiment with
``--runs`` runs through MLflow's API (from a pool of threads; each run with the tags, params and
per-epoch metrics a kernel's run gets, then ended), and starts a real Jupyter server with the
extension, configured through the environment as the hub configures a team server. It then
measures, interleaved so all see the same load, N requests each:

(a) the endpoint, over HTTP with the server's token on a keep-alive connection;
(b) the stock query in this process: ``MlflowClient.search_runs([experiment_id],
    max_results=10, order_by=["attributes.start_time DESC"])``, the experiment's id known;
(c) the same with ``MlflowClient.get_experiment_by_name`` first, as a client that knows only the
    notebook must do.

Prints how long the setup took, p50 and p95 of each, the endpoint's ratios to (b) and (c), and
whether the aims hold (ratio to (b) <= 1.2 at p50 and p95, endpoint p95 <= 150 ms); it does not
fail when they do not.

How MLflow is signed in to (``--auth``), by the Jupyter server and this process alike:

* ``token`` (default): as a team server does when no MLflow credentials are configured, with the
  server's hub token as ``MLFLOW_TRACKING_TOKEN``. The plugin asks the hub whose token it is
  (and remembers the answer for a minute): a stand-in for JupyterHub's ``GET /hub/api/user`` in
  this process answers for the benchmark's user.
* ``admin``: MLflow's basic auth as its admin, as the tests sign in (``mlflow_admin``). MLflow
  checks the password's scrypt hash on every request, which costs far more than the query, so
  the figures are mostly that check's.

The runs are always made with the hub token (the benchmark's user owns the experiment; the
admin reads everything).

Run: ``.venv/bin/python -m benchmarks.panel [--runs 10000] [--requests 200] [--auth token]`` (not
part of the test suite; making 10,000 runs takes several minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from devenv.controlplane import StartError
from devenv.mlflow_server import MLflowServer
from devenv.procs import Child, ProcessGroup, free_port, processes_with_marker
from server_ext import contract

TEAM = "bench"
USER = "bench-user"
NOTEBOOK = "projects/panel/train.ipynb"
EXPERIMENT_TAGS = {"mlteams.team": TEAM, "mlteams.user": USER, "mlteams.notebook_path": NOTEBOOK}
PAGE_SIZE = 10
WARMUP = 10
SETUP_THREADS = 8
AIM_RATIO = 1.2
AIM_P95_MS = 150.0
MLFLOW_ENV = (*contract.SECRET_ENV_NAMES, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")


@contextmanager
def stand_in_hub(token: str) -> Iterator[str]:
    """JupyterHub's ``GET /hub/api/user`` for one token, whose owner is ``USER``: what the MLflow
    plugin asks to learn whose a hub token is. Yields the hub API's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            known = self.headers.get("Authorization", "") == f"token {token}"
            if self.path != "/hub/api/user" or not known:
                self.send_error(403 if self.path == "/hub/api/user" else 404)
                return
            body = json.dumps({"kind": "user", "name": USER, "groups": [TEAM]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hub/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def signed_in(credentials: dict[str, str]) -> Iterator[None]:
    """This process's MLflow clients sign in with ``credentials`` (MLflow's variables); the
    environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    for key in contract.SECRET_ENV_NAMES:
        os.environ.pop(key, None)
    # MlflowClient.set_terminated prints a link to each run otherwise
    os.environ.update({**credentials, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_fields(i: int) -> tuple[dict[str, str], list[Metric], list[Param], list[RunTag]]:
    """What the kernel hook records for run ``i``: its context tags at creation, then a batch of
    params, per-epoch metrics and the environment tags."""
    tags = {
        "mlteams.team": TEAM,
        "mlteams.user": USER,
        "mlteams.notebook_path": NOTEBOOK,
        "mlteams.profile": "gpu1",
        "mlteams.gpus": "1",
        "mlflow.source.name": NOTEBOOK,
        "mlflow.source.type": "NOTEBOOK",
        "mlflow.user": USER,
    }
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, value, now, step)
        for step in range(5)
        for key, value in (
            ("loss", 1.0 / (step + 1 + i % 7)),
            ("accuracy", 0.5 + 0.09 * step),
            ("val_loss", 1.1 / (step + 1 + i % 5)),
        )
    ]
    params = [
        Param("lr", str(10 ** -(1 + i % 4))),
        Param("batch_size", str(2 ** (4 + i % 4))),
        Param("max_iter", str(100 * (1 + i % 5))),
        Param("optimizer", ("adam", "sgd")[i % 2]),
        Param("seed", str(i)),
    ]
    env_tags = [
        RunTag(contract.TAG_IMAGE, "mlteams/pytorch:dev"),
        RunTag(contract.TAG_GIT_COMMIT, f"{i:040x}"),
        RunTag(contract.TAG_ENVIRONMENT, contract.ENVIRONMENT_DIR),
    ]
    return tags, metrics, params, env_tags


def create_runs(tracking_uri: str, experiment_id: str, n: int) -> None:
    """``n`` ended runs, one a minute up to now (run 0 the oldest), from a pool of threads."""
    client = MlflowClient(tracking_uri)
    first_start = int(time.time() * 1000) - n * 60_000

    def one(i: int) -> None:
        tags, metrics, params, env_tags = run_fields(i)
        start = first_start + i * 60_000
        run = client.create_run(
            experiment_id, start_time=start, tags=tags, run_name=f"train-{i:05d}"
        )
        run_id = run.info.run_id
        client.log_batch(run_id, metrics=metrics, params=params, tags=env_tags)
        status = RunStatus.to_string(RunStatus.FAILED if i % 20 == 19 else RunStatus.FINISHED)
        client.set_terminated(run_id, status, end_time=start + 20_000 + (i % 40) * 1000)

    pool = ThreadPoolExecutor(SETUP_THREADS)
    try:
        for _ in pool.map(one, range(n)):
            pass
    finally:
        # on an error or Ctrl-C, the runs not yet started are not made
        pool.shutdown(cancel_futures=True)


def start_jupyter(
    procs: ProcessGroup, root: Path, tracking_uri: str, token: str, credentials: dict[str, str]
) -> tuple[Child, str]:
    """A Jupyter server with the extension and a team server's environment; its URL once
    ``/api/status`` answers."""
    port = free_port()
    (root / "notebooks" / Path(NOTEBOOK).parent).mkdir(parents=True, exist_ok=True)
    (root / "config").mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "MLFLOW_", "MLTEAMS_", "JUPYTER_"))
    }
    env.update(
        {
            contract.TEAM: TEAM,
            contract.USER: USER,
            contract.PROFILE: "gpu1",
            contract.TRACKING_ENABLED: "1",
            contract.TRACKING_URI: tracking_uri,
            **credentials,
            "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTER_DATA_DIR": str(root / "data"),
        }
    )
    argv = [
        str(Path(sys.executable).with_name("jupyter")),
        "server",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root / 'notebooks'}",
        "--ServerApp.jpserver_extensions=server_ext=True",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    child = procs.start(f"jupyter-{port}", argv, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not child.alive():
            raise StartError(f"jupyter server exited:\n{child.log_tail()}")
        try:
            if requests.get(f"{url}/api/status", headers=headers, timeout=2).status_code == 200:
                return child, url
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise StartError(f"jupyter server did not answer in 120 s:\n{child.log_tail()}")


def percentile(samples: Iterable[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(calls: dict[str, Callable[[], list[str]]], n: int) -> dict[str, list[float]]:
    """Seconds per call of each, interleaved (the order rotates each round, so no kind always
    goes first); all must return the same page of run ids."""
    kinds = list(calls)
    for _ in range(WARMUP):
        pages = {kind: calls[kind]() for kind in kinds}
        first = pages[kinds[0]]
        if len(first) != PAGE_SIZE or any(page != first for page in pages.values()):
            raise SystemExit(f"the endpoint and MLflow disagree: {pages}")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(n):
        shift = i % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            elapsed, ids = timed(calls[kind])
            if len(ids) != PAGE_SIZE:
                raise SystemExit(f"{kind} returned {len(ids)} runs, not {PAGE_SIZE}")
            times[kind].append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the experiment")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind")
    parser.add_argument(
        "--auth",
        choices=("token", "admin"),
        default="token",
        help="how MLflow is signed in to: the server's hub token (default) or the admin password",
    )
    args = parser.parse_args(argv)
    if args.runs < PAGE_SIZE or args.requests < 2:
        parser.error(f"--runs must be at least {PAGE_SIZE} and --requests at least 2")

    name = contract.experiment_name(TEAM, USER, NOTEBOOK)
    rig_id = f"bench-panel-{uuid.uuid4().hex[:12]}"
    hub_token = secrets.token_hex(24)
    with (
        tempfile.TemporaryDirectory(prefix="mlteams-bench-") as tmp,
        stand_in_hub(hub_token) as hub_api_url,
    ):
        root = Path(tmp)
        procs = ProcessGroup(rig_id, root / "logs")
        session = requests.Session()
        try:
            mlflow = MLflowServer(root / "mlflow", procs, hub_api_url=hub_api_url)
            mlflow.start()
            token_credentials = {contract.TRACKING_TOKEN: hub_token}
            with signed_in(token_credentials):
                start = time.perf_counter()
                # the tags the extension's POST /mlteams/experiment gives a notebook's experiment
                experiment_id = MlflowClient(mlflow.url).create_experiment(
                    name, tags=EXPERIMENT_TAGS
                )
                create_runs(mlflow.url, experiment_id, args.runs)
                setup = time.perf_counter() - start
            print(f"setup: {args.runs} runs in {setup:.1f} s ({args.runs / setup:.0f} runs/s)")

            if args.auth == "token":
                # the hub's default: the server's own hub token is its MLflow token too
                credentials = {**token_credentials, contract.HUB_API_TOKEN: hub_token}
            else:
                credentials = {
                    contract.TRACKING_USERNAME: mlflow.admin_username,
                    contract.TRACKING_PASSWORD: mlflow.admin_password,
                }
            server_token = secrets.token_hex(24)
            _, url = start_jupyter(procs, root / "jupyter", mlflow.url, server_token, credentials)
            session.headers["Authorization"] = f"token {server_token}"
            runs_url = f"{url}/mlteams/runs"

            def endpoint() -> list[str]:
                response = session.get(
                    runs_url, params={"path": NOTEBOOK, "page_size": str(PAGE_SIZE)}, timeout=60
                )
                response.raise_for_status()
                return [r["run_id"] for r in response.json()["runs"]]

            def search(client: MlflowClient, experiment_id: str) -> list[str]:
                runs = client.search_runs(
                    [experiment_id],
                    max_results=PAGE_SIZE,
                    order_by=["attributes.start_time DESC"],
                )
                return [r.info.run_id for r in runs]

            def direct() -> list[str]:
                # the query alone, the experiment's id known: the stricter comparison
                return search(MlflowClient(mlflow.url), experiment_id)

            def lookup_and_direct() -> list[str]:
                # what a client that knows only the notebook does: find the experiment, then query
                client = MlflowClient(mlflow.url)
                experiment = client.get_experiment_by_name(name)
                assert experiment is not None
                return search(client, experiment.experiment_id)

            calls = {"endpoint": endpoint, "direct": direct, "lookup": lookup_and_direct}
            with signed_in({k: v for k, v in credentials.items() if k in MLFLOW_ENV}):
                times = measure(calls, args.requests)
        finally:
            session.close()
            procs.stop_all()
            # anything they started and left behind carries the marker
            for pid, _ in processes_with_marker(rig_id):
                os.kill(pid, signal.SIGKILL)

    p50 = {kind: percentile(samples, 50) for kind, samples in times.items()}
    p95 = {kind: percentile(samples, 95) for kind, samples in times.items()}
    signed = "the hub token" if args.auth == "token" else "the admin password"
    print(
        f"{args.runs} runs in the experiment, {args.requests} requests each for a page of "
        f"{PAGE_SIZE}, MLflow signed in to with {signed}:"
    )
    labels = {
        "endpoint": "GET /mlteams/runs (endpoint)      ",
        "direct": "MlflowClient.search_runs          ",
        "lookup": "get_experiment_by_name+search_runs",
    }
    for kind, label in labels.items():
        print(f"  {label}  p50 {ms(p50[kind])}  p95 {ms(p95[kind])}")
    for kind in ("direct", "lookup"):
        r50, r95 = p50["endpoint"] / p50[kind], p95["endpoint"] / p95[kind]
        print(f"  ratio endpoint/{kind:<27}p50 {r50:7.3f}     p95 {r95:7.3f}")
    ratio50 = p50["endpoint"] / p50["direct"]
    ratio95 = p95["endpoint"] / p95["direct"]
    ratio_ok = ratio50 <= AIM_RATIO and ratio95 <= AIM_RATIO
    p95_ok = p95["endpoint"] * 1000 <= AIM_P95_MS
    print(f"  ratios to search_runs alone <= {AIM_RATIO}: {'yes' if ratio_ok else 'no'}")
    print(f"  endpoint p95 <= {AIM_P95_MS:.0f} ms: {'yes' if p95_ok else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
