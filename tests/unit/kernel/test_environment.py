"""A run's environment as data: image references, distributions, git output, the document and
its tags; and the recorder's caching, once-per-run and one-warning rules with a fake client."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server_ext import contract as env
from server_ext.kernel import environment_capture
from server_ext.kernel.environment import (
    Distribution,
    GitState,
    ImageRef,
    Interpreter,
    clean_url,
    environment_document,
    environment_tags,
    name_from_dist_info,
    parse_image,
    parse_remotes,
    parse_status,
    requirements_text,
)
from server_ext.kernel.environment_capture import EnvironmentRecorder, git_state

pytestmark = pytest.mark.unit

SHA = "sha256:" + "a" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("", None),
        ("  ", None),
        ("python", ImageRef("python", "python")),
        ("python:3.11", ImageRef("python:3.11", "python", "3.11")),
        ("quay.io/jupyter/scipy:2024-05", ImageRef(
            "quay.io/jupyter/scipy:2024-05", "quay.io/jupyter/scipy", "2024-05")),
        ("registry:5000/team/img", ImageRef("registry:5000/team/img", "registry:5000/team/img")),
        ("registry:5000/img:v1", ImageRef("registry:5000/img:v1", "registry:5000/img", "v1")),
        (f"img@{SHA}", ImageRef(f"img@{SHA}", "img", None, SHA)),
        (f"r.io/img:v2@{SHA}", ImageRef(f"r.io/img:v2@{SHA}", "r.io/img", "v2", SHA)),
        ("img@sha256:abc", ImageRef("img@sha256:abc", "img")),
        ("img@latest", ImageRef("img@latest", "img")),
        ("img:", ImageRef("img:", "img")),
    ],
)  # fmt: skip
def test_image_references(reference: str, expected: ImageRef | None) -> None:
    assert parse_image(reference) == expected


def test_a_pinned_image_pulls_by_digest() -> None:
    found = parse_image(f"r.io/img:v2@{SHA}")
    assert found is not None and found.pinned == f"r.io/img@{SHA}"
    unpinned = parse_image("r.io/img:v2")
    assert unpinned is not None and unpinned.pinned is None


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("numpy-2.1.0.dist-info", ("numpy", "2.1.0")),
        ("scikit_learn-1.5.2.dist-info", ("scikit-learn", "1.5.2")),
        ("PyYAML-6.0.2.dist-info", ("pyyaml", "6.0.2")),
        ("zope.interface-7.0.dist-info", ("zope-interface", "7.0")),
        ("torch-2.4.0+cu121.dist-info", ("torch", "2.4.0+cu121")),
        ("six-1.16.0-py3.6.egg-info", None),
        ("broken.dist-info", None),
        ("__editable__.pkg-1.0.pth", None),
    ],
)
def test_names_and_versions_from_dist_info_folders(
    folder: str, expected: tuple[str, str] | None
) -> None:
    assert name_from_dist_info(folder) == expected


def test_requirements_are_sorted_canonical_and_the_first_on_the_path_wins() -> None:
    dists = [
        Distribution("Pandas", "2.2.0", "/home/u/.local/site"),
        Distribution("numpy", "2.1.0", "/opt/conda/site"),
        Distribution("pandas", "2.1.0", "/opt/conda/site"),
        Distribution("Scikit_Learn", "1.5", "/opt/conda/site"),
        Distribution("nameless", "", "/opt/conda/site"),
    ]
    assert requirements_text(dists) == "numpy==2.1.0\npandas==2.2.0\nscikit-learn==1.5\n"
    assert requirements_text([]) == ""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("", None),
        ("fatal: not a git repository", None),
        (
            f"# branch.oid {COMMIT}\n# branch.head main\n# branch.upstream origin/main\n"
            "# branch.ab +0 -0\n",
            GitState(COMMIT, "main"),
        ),
        (f"# branch.oid {COMMIT}\n# branch.head (detached)\n", GitState(COMMIT, None)),
        (
            f"# branch.oid {COMMIT}\n# branch.head dev\n1 .M N... 100644 100644 100644 a b x.py\n"
            "2 R. N... 100644 100644 100644 a b R100 new.py\told.py\n",
            GitState(COMMIT, "dev", dirty=True, changed_files=2),
        ),
        ("# branch.oid (initial)\n# branch.head main\n", GitState(None, "main")),
    ],
)
def test_git_status_output(output: str, expected: GitState | None) -> None:
    assert parse_status(output) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("", None),
        (
            "upstream\thttps://h/up.git (fetch)\norigin\tgit@h:me/r.git (fetch)\n"
            "origin\tgit@h:me/r.git (push)\n",
            "git@h:me/r.git",
        ),
        ("fork\thttps://h/fork.git (fetch)\nfork\thttps://h/fork.git (push)\n", "https://h/fork.git"),
        ("origin\thttps://alice:tok3n@h/r.git (fetch)\n", "https://h/r.git"),
    ],
)  # fmt: skip
def test_git_remotes(output: str, expected: str | None) -> None:
    assert parse_remotes(output) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://u:p@gitlab.example:8443/o/r", "https://gitlab.example:8443/o/r"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("ssh://git:pw@github.com/o/r.git", "ssh://github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/repos/r.git", "/srv/repos/r.git"),
    ],
)
def test_remote_urls_lose_their_credentials(url: str, expected: str) -> None:
    assert clean_url(url) == expected


INTERPRETER = Interpreter(
    version="3.11.7",
    implementation="CPython",
    executable="/opt/conda/bin/python",
    prefix="/opt/conda",
    base_prefix="/opt/conda",
    platform="Linux-6.1-x86_64",
    system="Linux",
    machine="x86_64",
)
ENVIRON = {
    env.TEAM: "vision",
    env.USER: "alice",
    env.PROFILE: "gpu1",
    env.IMAGE: f"r.io/img:v2@{SHA}",
    env.KERNEL_NAME: "proj-a",
}
DISTS = [
    Distribution("numpy", "2.1.0", "/opt/conda/lib/python3.11/site-packages"),
    Distribution("rich", "13.0", "/home/alice/.local/lib/python3.11/site-packages"),
]


def test_the_environment_document_and_its_tags() -> None:
    git = GitState(COMMIT, "main", True, 1, "https://h/r.git", "/home/alice/proj")
    doc = environment_document(
        interpreter=INTERPRETER,
        environ=ENVIRON,
        dists=DISTS,
        git=git,
        notebook_path="/home/alice/proj/nb/train.ipynb",
        home="/home/alice",
        captured_at="2026-01-01T00:00:00+00:00",
    )
    assert doc["python"]["version"] == "3.11.7"
    assert doc["python"]["prefix"] == "/opt/conda"
    assert doc["platform"]["system"] == "Linux"
    assert doc["kernel"] == {"name": "proj-a"}
    assert doc["image"] == {
        "reference": f"r.io/img:v2@{SHA}",
        "name": "r.io/img",
        "tag": "v2",
        "digest": SHA,
        "pinned": f"r.io/img@{SHA}",
    }
    assert doc["git"] == {
        "commit": COMMIT,
        "branch": "main",
        "dirty": True,
        "changed_files": 1,
        "remote_url": "https://h/r.git",
        "root": "/home/alice/proj",
        "notebook_path": "nb/train.ipynb",
    }
    assert doc["packages"] == {
        "count": 2,
        "requirements": "environment/requirements.txt",
        "installed_in_home": ["rich==13.0"],
    }
    assert (doc["team"], doc["user"], doc["profile"]) == ("vision", "alice", "gpu1")
    assert doc["notebook_path"] == "/home/alice/proj/nb/train.ipynb"
    json.dumps(doc)
    assert environment_tags(doc) == {
        "mlteams.environment": "environment",
        "mlteams.image": f"r.io/img:v2@{SHA}",
        "mlteams.image_digest": SHA,
        "mlteams.git_commit": COMMIT,
        "mlflow.source.git.commit": COMMIT,
        "mlflow.source.git.branch": "main",
        "mlflow.source.git.dirty": "true",
        "mlflow.source.git.repoURL": "https://h/r.git",
    }


def test_what_is_unknown_is_left_out() -> None:
    doc = environment_document(
        interpreter=INTERPRETER,
        environ={env.IMAGE: "img:v1"},
        dists=[],
        git=None,
        notebook_path="",
        home="/home/alice",
        captured_at="t",
    )
    assert not {"kernel", "git", "notebook_path", "team", "user", "profile"} & set(doc)
    assert doc["image"] == {"reference": "img:v1", "name": "img", "tag": "v1"}
    assert environment_tags(doc) == {
        "mlteams.environment": "environment",
        "mlteams.image": "img:v1",
    }


# -- git through the real executable ---------------------------------------------------------


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_git_state_of_a_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "nb").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.py").write_text("1")
    git(repo, "add", "a.py")
    git(repo, "commit", "-q", "-m", "x")
    git(repo, "remote", "add", "origin", "https://bob:secret@example.org/r.git")
    commit = git(repo, "rev-parse", "HEAD")
    state = git_state(str(repo / "nb"), 5)
    assert state == GitState(commit, "main", False, 0, "https://example.org/r.git", str(repo))
    (repo / "a.py").write_text("2")
    (repo / "untracked.txt").write_text("not a change of the commit")
    dirty = git_state(str(repo), 5)
    assert dirty is not None and dirty.dirty and dirty.changed_files == 1


def test_no_repository_or_no_git_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_state(str(tmp_path), 5) is None
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    assert git_state(str(repo), 5) is None  # no commit yet
    (repo / "a").write_text("1")
    git(repo, "add", "a")
    git(repo, "commit", "-q", "-m", "x")
    commit = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert git_state(str(repo), 5) == GitState(commit)
    assert git_state(str(tmp_path), 5) is None


# -- the recorder ------------------------------------------------------------------------------


class FakeClient:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.tags: dict[str, dict[str, str]] = {}
        self.artifacts: dict[str, dict[str, str]] = {}

    def log_batch(self, run_id: str, tags: list[Any]) -> None:
        if self.fail:
            raise ConnectionError("tracking server went away")
        self.tags.setdefault(run_id, {}).update({t.key: t.value for t in tags})

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str) -> None:
        files = self.artifacts.setdefault(run_id, {})
        for path in Path(local_dir).iterdir():
            files[f"{artifact_path}/{path.name}"] = path.read_text()


def recorder(tmp_path: Path, calls: list[int], warnings: list[str]) -> EnvironmentRecorder:
    stamp = [0]

    def dists() -> list[Distribution]:
        calls.append(1)
        return [*DISTS, Distribution("extra", str(stamp[0]), "/x")]

    rec = EnvironmentRecorder(
        environ={**ENVIRON, env.SESSION_NAME: str(tmp_path / "train.ipynb")},
        home="/home/alice",
        warn=warnings.append,
        distributions=dists,
        fingerprint=lambda: stamp[0],
    )
    rec.stamp = stamp  # type: ignore[attr-defined]
    return rec


def test_each_run_gets_its_environment_once_and_packages_are_read_again_after_installs(
    tmp_path: Path,
) -> None:
    calls: list[int] = []
    warnings: list[str] = []
    rec = recorder(tmp_path, calls, warnings)
    client = FakeClient()
    rec.record(client, "r1")
    rec.record(client, "r1")
    rec.record(client, "r2")
    assert len(calls) == 1
    assert set(client.artifacts) == {"r1", "r2"}
    files = client.artifacts["r1"]
    assert files[env.REQUIREMENTS_ARTIFACT] == "extra==0\nnumpy==2.1.0\nrich==13.0\n"
    doc = json.loads(files[env.ENVIRONMENT_ARTIFACT])
    assert doc["notebook_path"] == str(tmp_path / "train.ipynb") and "git" not in doc
    assert client.tags["r1"]["mlteams.image_digest"] == SHA
    rec.stamp[0] = 1  # type: ignore[attr-defined]
    rec.record(client, "r3")
    assert len(calls) == 2
    assert "extra==1" in client.artifacts["r3"][env.REQUIREMENTS_ARTIFACT]
    assert warnings == []


def test_failures_give_one_warning_and_never_raise(tmp_path: Path) -> None:
    warnings: list[str] = []
    rec = recorder(tmp_path, [], warnings)
    client = FakeClient(fail=True)
    rec.record(client, "r1")
    rec.record(client, "r2")
    assert len(warnings) == 1
    assert "r1" in warnings[0] and "tracking server went away" in warnings[0]


def test_the_real_distributions_include_this_environment() -> None:
    found = {d.name: d for d in environment_capture.installed_distributions()}
    assert "mlflow" in found and found["mlflow"].version.startswith("3.")
    assert found["mlflow"].location.endswith("site-packages")


def test_run_callbacks_share_one_wrapper_that_comes_off_with_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from mlflow.tracking import MlflowClient

    from server_ext.kernel.run_hooks import on_run_created

    def create_run(self: Any, experiment_id: str, **kwargs: Any) -> Any:
        return SimpleNamespace(info=SimpleNamespace(run_id=f"run-{experiment_id}"))

    monkeypatch.setattr(MlflowClient, "create_run", create_run)
    seen: list[tuple[str, str]] = []

    def failing(client: Any, run_id: str) -> None:
        seen.append(("failing", run_id))
        raise RuntimeError("never reaches the caller")

    undo_first = on_run_created(failing)
    undo_second = on_run_created(lambda client, run_id: seen.append(("second", run_id)))
    wrapper = MlflowClient.create_run
    client = MlflowClient("http://127.0.0.1:1")
    client.create_run("1")
    undo_first()
    assert MlflowClient.create_run is wrapper
    client.create_run("2")
    undo_second()
    assert MlflowClient.create_run is create_run
    client.create_run("3")
    assert seen == [("failing", "run-1"), ("second", "run-1"), ("second", "run-2")]
