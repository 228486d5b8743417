"""The JupyterLab side panel in Chromium, in a server the team hub spawned on the rig (token and
XSRF on, as for every user): the panel follows the open notebook, shows a run as soon as the cell
that trained it is done, compares two runs, inserts the team's iris snippet, shows the team's real
GPU use, says one clear thing while MLflow is down and recovers when it is back, and promotes a
run's model through the gates."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.mlflow_server import MLflowServer
from tests.browser.hub_pages import sign_in
from tests.conftest import RESULTS_DIR
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

USER = "v-panel"
GPU_HOLDER = "v-gpu"
OTHER_TEAM = "n-erin"
NOTEBOOK = "panel/train.ipynb"
PROMOTE_NOTEBOOK = "panel/promote.ipynb"
NAMESPACE = "it-vision"
GPU_RESOURCE = "requests.nvidia.com/gpu"
TRAIN = """\
from sklearn.linear_model import LogisticRegression

X, y = df.drop(columns="species"), df["species"]
model = LogisticRegression(C={c}, max_iter=300).fit(X, y)
print("trained", model.score(X, y) > 0.9)
"""
OPEN_RUN = """\
import mlflow

run = mlflow.start_run(run_name="left-open")
print("open", run.info.status)
"""
LONG = 120_000


def save_notebook(hub: LocalHub, user: str, path: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    folder = path.rpartition("/")[0]
    status, body = hub.request("PUT", f"/user/{user}/api/contents/{folder}", {"type": "directory"})
    assert status in (200, 201), body
    model = {"type": "notebook", "format": "json", "content": nb}
    status, body = hub.request("PUT", f"/user/{user}/api/contents/{path}", model)
    assert status in (200, 201), body


def quiet_lab(hub: LocalHub, user: str) -> None:
    """Turn off JupyterLab's offer to fetch news, a toast that would cover the panel."""
    path = f"/user/{user}/lab/api/settings/@jupyterlab/apputils-extension:notification"
    status, body = hub.request("PUT", path, {"raw": json.dumps({"fetchNews": "false"})})
    assert status == 204, body


def start(hub: LocalHub, user: str, options: dict[str, str]) -> None:
    status, body = hub.call("POST", f"/users/{user}/server", options)
    assert status in (201, 202), body


def stop(hub: LocalHub, user: str) -> None:
    hub.call("DELETE", f"/users/{user}/server")
    wait_server_sync(hub, user, ready=False)


@pytest.fixture
def servers(team_hub: LocalHub) -> Iterator[None]:
    """The panel user's CPU server and a teammate's one-GPU server, stopped after."""
    start(team_hub, USER, {"team": "vision", "profile": "cpu"})
    start(team_hub, GPU_HOLDER, {"team": "vision", "profile": "gpu1"})
    try:
        wait_server_sync(team_hub, USER, ready=True)
        wait_server_sync(team_hub, GPU_HOLDER, ready=True)
        yield
    finally:
        stop(team_hub, USER)
        stop(team_hub, GPU_HOLDER)


def team_gpus(cluster: LocalCluster) -> tuple[int, int]:
    """The team's GPU quota and use as Kubernetes' ResourceQuota admission counts them."""
    quotas = cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/resourcequotas")["items"]
    (quota,) = [q for q in quotas if GPU_RESOURCE in q.get("spec", {}).get("hard", {})]
    hard = int(quota["status"]["hard"][GPU_RESOURCE])
    used = int(quota["status"].get("used", {}).get(GPU_RESOURCE, "0"))
    return hard, used


def open_panel(page: Page) -> Locator:
    tab = page.locator('.lm-TabBar-tab[data-id="mlteams-panel"]')
    expect(tab).to_be_visible(timeout=LONG)
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    panel = page.get_by_test_id("mlteams-panel")
    expect(panel).to_be_visible()
    return panel


def cells(page: Page) -> Locator:
    """The cells of the notebook on show (JupyterLab may restore other notebooks' tabs)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def wait_for_kernel(hub: LocalHub, user: str, path: str) -> None:
    """Wait until the notebook's kernel is up: JupyterLab does not run a cell while its notebook
    has no kernel yet (the prompt stays ``[ ]``)."""

    def idle() -> bool:
        status, sessions = hub.request("GET", f"/user/{user}/api/sessions")
        assert status == 200, sessions
        return any(
            s.get("path") == path and (s.get("kernel") or {}).get("execution_state") == "idle"
            for s in sessions
        )

    wait_for(idle, timeout=LONG / 1000, what=f"an idle kernel for {path}")


def insert_snippet(page: Page, dataset: Locator) -> None:
    """Put the dataset's snippet into the notebook's empty first cell, as a person would: click
    into the cell, then the dataset's "Insert snippet"; wait until the cell holds it."""
    cells(page).first.locator(".jp-InputArea-editor").click()
    dataset.get_by_test_id("mlteams-insert-snippet").click()
    expect(cells(page).first.locator(".jp-InputArea-editor")).to_contain_text("pd.read_")


def run_cell(page: Page, index: int) -> None:
    """Run the notebook's cell ``index`` with Shift+Enter, as a person would, and wait until
    its prompt shows it has run (a screenshot of the page is kept when it does not)."""
    cell = cells(page).nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    try:
        expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=LONG)
    except AssertionError:
        page.screenshot(path=str(RESULTS_DIR / f"panel-cell-{index}-did-not-run.png"))
        raise


def cell_text(page: Page, index: int) -> Locator:
    return cells(page).nth(index).locator(".jp-OutputArea")


def test_the_panel_follows_the_notebook_and_the_team(
    team_hub: LocalHub,
    cluster: LocalCluster,
    mlflow_server: MLflowServer,
    browser: Browser,
    results_dir: Path,
    servers: None,
) -> None:
    save_notebook(team_hub, USER, NOTEBOOK, "", TRAIN.format(c=0.5), TRAIN.format(c=2.0), OPEN_RUN)
    quiet_lab(team_hub, USER)
    page = sign_in(browser, team_hub, USER, width=1500, height=950)
    try:
        page.goto(f"{team_hub.url}/user/{USER}/lab/tree/{NOTEBOOK}")
        expect(cells(page).first).to_be_visible(timeout=LONG)
        panel = open_panel(page)
        runs = panel.get_by_test_id("mlteams-runs")
        expect(runs).to_contain_text("No runs", timeout=LONG)
        page.screenshot(path=str(results_dir / "panel-1-no-runs.png"))

        # the team's datasets: iris is read from the object store, vision-shared is mounted;
        # the iris snippet goes into the empty first cell and runs
        iris = panel.locator('[data-testid="mlteams-dataset"][data-name="iris"]')
        expect(iris).to_contain_text("read from object storage")
        shared = panel.locator('[data-testid="mlteams-dataset"][data-name="vision-shared"]')
        expect(shared).to_contain_text("mounted read-only at ~/datasets/vision-shared")
        insert_snippet(page, iris)
        page.screenshot(path=str(results_dir / "panel-2-snippet-inserted.png"))
        wait_for_kernel(team_hub, USER, NOTEBOOK)
        run_cell(page, 0)
        expect(cell_text(page, 0)).not_to_contain_text("Error")

        # a cell that trains a model: its run shows up without a reload
        run_cell(page, 1)
        expect(cell_text(page, 1)).to_contain_text("trained True")
        rows = runs.get_by_test_id("mlteams-run-row")
        expect(rows).to_have_count(1, timeout=LONG)
        expect(rows.first.get_by_test_id("mlteams-run-status")).to_contain_text(
            re.compile("finished", re.I), timeout=LONG
        )
        expect(rows.first).to_contain_text("iris")
        link = rows.first.get_by_test_id("mlteams-run-link")
        assert (link.get_attribute("href") or "").startswith(mlflow_server.url)
        page.screenshot(path=str(results_dir / "panel-3-first-run.png"))

        # a second run, and the two side by side: C differs, highlighted
        run_cell(page, 2)
        expect(rows).to_have_count(2, timeout=LONG)
        rows.nth(0).get_by_test_id("mlteams-run-select").check()
        rows.nth(1).get_by_test_id("mlteams-run-select").check()
        panel.get_by_test_id("mlteams-compare-button").click()
        compare = panel.get_by_test_id("mlteams-compare")
        expect(compare).to_be_visible()
        param = 'tr[data-kind="param"][data-key="{}"]'.format
        expect(compare.locator(param("C"))).to_have_attribute("data-diff", "true")
        expect(compare.locator(param("C"))).to_contain_text("0.5")
        expect(compare.locator(param("C"))).to_contain_text("2.0")
        expect(compare.locator(param("max_iter"))).to_have_attribute("data-diff", "false")
        compare.scroll_into_view_if_needed()
        page.screenshot(path=str(results_dir / "panel-4-compare.png"))

        # the team's GPUs as Kubernetes counts them: the teammate's GPU server holds one
        hard, used = team_gpus(cluster)
        assert used >= 1
        gpus = panel.get_by_test_id("mlteams-gpus")
        gpus.get_by_test_id("mlteams-gpus-refresh").click()
        expect(gpus.get_by_test_id("mlteams-gpu-summary")).to_have_text(
            f"Team Vision: {hard - used} of {hard} GPUs free; you hold 0 of your 2"
        )
        expect(gpus.get_by_test_id("mlteams-gpu-note")).to_have_count(0)
        expect(gpus.get_by_test_id("mlteams-gpus-refresh")).to_be_enabled()
        gpus.scroll_into_view_if_needed()
        page.screenshot(path=str(results_dir / "panel-5-gpus.png"))

        # MLflow down: one clear message and a retry; back up, the runs come back
        mlflow_server.stop()
        try:
            runs.get_by_test_id("mlteams-runs-refresh").click()
            error = runs.get_by_test_id("mlteams-error")
            expect(error).to_contain_text("MLflow", timeout=LONG)
            expect(error).not_to_contain_text("Traceback")
            expect(error).not_to_contain_text("{")
            expect(panel.get_by_test_id("mlteams-error")).to_have_count(1)
            expect(iris).to_be_visible()
            runs.scroll_into_view_if_needed()
            page.screenshot(path=str(results_dir / "panel-6-mlflow-down.png"))
        finally:
            mlflow_server.start()
        runs.get_by_test_id("mlteams-retry").click()
        expect(rows).to_have_count(2, timeout=LONG)
        expect(panel.get_by_test_id("mlteams-error")).to_have_count(0)
        page.screenshot(path=str(results_dir / "panel-7-recovered.png"))

        # a run the cell left open is flagged; "End run" ends it in MLflow
        run_cell(page, 3)
        expect(cell_text(page, 3)).to_contain_text("open RUNNING")
        left_open = rows.filter(has_text="left-open")
        expect(left_open.get_by_test_id("mlteams-run-status")).to_have_text("running", timeout=LONG)
        left_open.get_by_test_id("mlteams-end-run").click()
        expect(left_open.get_by_test_id("mlteams-run-status")).to_have_text("finished")
        expect(left_open.get_by_test_id("mlteams-end-run")).to_have_count(0)
        page.screenshot(path=str(results_dir / "panel-11-open-run-ended.png"))
    finally:
        page.context.close()


def test_the_panel_promotes_a_runs_model_through_the_gates(
    team_hub: LocalHub, browser: Browser, results_dir: Path, servers: None
) -> None:
    save_notebook(team_hub, USER, PROMOTE_NOTEBOOK, "", TRAIN.format(c=1.0))
    quiet_lab(team_hub, USER)
    page = sign_in(browser, team_hub, USER, width=1500, height=950)
    try:
        # ?reset: a fresh layout, not the one the first test left (its notebook's tab)
        page.goto(f"{team_hub.url}/user/{USER}/lab/tree/{PROMOTE_NOTEBOOK}?reset")
        expect(cells(page).first).to_be_visible(timeout=LONG)
        panel = open_panel(page)
        insert_snippet(page, panel.locator('[data-testid="mlteams-dataset"][data-name="iris"]'))
        wait_for_kernel(team_hub, USER, PROMOTE_NOTEBOOK)
        run_cell(page, 0)
        run_cell(page, 1)
        rows = panel.get_by_test_id("mlteams-runs").get_by_test_id("mlteams-run-row")
        expect(rows).to_have_count(1, timeout=LONG)
        expect(rows.first.get_by_test_id("mlteams-run-status")).to_contain_text(
            re.compile("finished", re.I), timeout=LONG
        )
        run_id = rows.first.get_attribute("data-run-id")
        assert run_id

        promote = panel.get_by_test_id("mlteams-promote")
        promote.get_by_test_id("mlteams-promote-run").select_option(run_id)
        model = promote.get_by_test_id("mlteams-promote-model")
        expect(model.locator("option")).not_to_have_count(0, timeout=LONG)
        promote.get_by_test_id("mlteams-promote-name").fill("iris")
        expect(promote.get_by_test_id("mlteams-promote-gates")).to_contain_text("accuracy")
        promote.scroll_into_view_if_needed()
        page.screenshot(path=str(results_dir / "panel-8-promote-form.png"))
        promote.get_by_test_id("mlteams-promote-submit").click()
        outcome = promote.get_by_test_id("mlteams-promote-outcome")
        expect(outcome).to_have_attribute("data-state", "promoted", timeout=600_000)
        gates = outcome.get_by_test_id("mlteams-gate")
        expect(gates.first).to_have_attribute("data-passed", "true")
        expect(outcome).to_contain_text(re.compile(r"version \d+ with alias champion"))
        outcome.get_by_role("button", name=re.compile("model card", re.I)).click()
        expect(outcome.get_by_test_id("mlteams-model-card")).to_contain_text("governed.vision.iris")
        outcome.scroll_into_view_if_needed()
        page.screenshot(path=str(results_dir / "panel-9-promoted.png"))
    finally:
        page.context.close()


def test_another_teams_panel_shows_only_its_own_team(
    team_hub: LocalHub, browser: Browser, results_dir: Path
) -> None:
    start(team_hub, OTHER_TEAM, {"team": "nlp", "profile": "cpu"})
    page: Page | None = None
    try:
        wait_server_sync(team_hub, OTHER_TEAM, ready=True)
        save_notebook(team_hub, OTHER_TEAM, NOTEBOOK, "")
        quiet_lab(team_hub, OTHER_TEAM)
        page = sign_in(browser, team_hub, OTHER_TEAM, width=1500, height=950)
        page.goto(f"{team_hub.url}/user/{OTHER_TEAM}/lab/tree/{NOTEBOOK}")
        panel = open_panel(page)
        expect(panel).to_contain_text("NLP")
        datasets = panel.get_by_test_id("mlteams-datasets")
        expect(datasets.get_by_test_id("mlteams-dataset")).not_to_have_count(0, timeout=LONG)
        expect(datasets.locator('[data-name="iris"]')).to_have_count(0)
        expect(panel.get_by_test_id("mlteams-runs")).to_contain_text("No runs", timeout=LONG)
        expect(panel.get_by_test_id("mlteams-gpu-summary")).to_contain_text("Team NLP")
        page.screenshot(path=str(results_dir / "panel-10-other-team.png"))
    finally:
        if page is not None:
            page.context.close()
        stop(team_hub, OTHER_TEAM)
