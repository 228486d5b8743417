"""Freezing a model into the governed bucket of a real MinIO, and verifying it afterwards.

The service's object store client (aiobotocore) writes, lists, presigns and deletes; a frozen
model whose bytes change, or that loses a file, no longer verifies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
from pathlib import Path

import pytest

from devenv.object_store import ObjectStore as LocalObjectStore
from devenv.procs import free_port
from hub_ext.service.candidate import local_candidate
from hub_ext.service.freeze import DigestMismatch, freeze, manifest_digest, verify
from hub_ext.service.object_store import ObjectMissing, ObjectStore, StoreUnavailable
from tests.kube_helpers import unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BUCKET = "mlteams-governed"
MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
  sklearn:
    sklearn_version: 1.5.0
signature:
  inputs: '[{"type": "double", "name": "a"}]'
  outputs: '[{"type": "long"}]'
"""


def _fetch(url: str, data: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "PUT")
    with urllib.request.urlopen(request, timeout=30) as answer:
        body: bytes = answer.read()
        return body


@pytest.fixture
async def store(object_store: LocalObjectStore) -> ObjectStore:
    root = object_store.root_credentials
    client = ObjectStore(object_store.endpoint_url, root.access_key, root.secret_key)
    await client.ensure_bucket(BUCKET)
    return client


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "code").mkdir(parents=True)
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "requirements.txt").write_text("scikit-learn==1.5.0\n")
    (folder / "model.pkl").write_bytes(bytes(range(256)) * 4)
    (folder / "code" / "helpers.py").write_text("VALUE = 1\n")
    return folder


async def test_store_puts_gets_lists_presigns_and_deletes(store: ObjectStore) -> None:
    prefix = f"s3://{BUCKET}/{unique('objects')}"
    await store.put(f"{prefix}/a.txt", b"first")
    await store.put(f"{prefix}/sub/b.txt", b"second")
    assert await store.get(f"{prefix}/a.txt") == b"first"
    assert await store.list(prefix + "/") == [f"{prefix}/a.txt", f"{prefix}/sub/b.txt"]

    read = await asyncio.to_thread(_fetch, await store.presign_get(f"{prefix}/sub/b.txt", 60))
    assert read == b"second"
    put = await store.presign_put(f"{prefix}/uploaded.json", 60)
    assert await asyncio.to_thread(_fetch, put, b"{}") == b""
    assert await store.get(f"{prefix}/uploaded.json") == b"{}"

    assert await store.delete_prefix(prefix) == 3
    assert await store.list(prefix + "/") == []
    with pytest.raises(ObjectMissing, match="there is no object at"):
        await store.get(f"{prefix}/a.txt")


async def test_a_store_that_does_not_answer_is_unavailable() -> None:
    store = ObjectStore(f"http://127.0.0.1:{free_port()}", "key", "secret", connect_timeout=1)
    with pytest.raises(StoreUnavailable, match="does not answer"):
        await store.get(f"s3://{BUCKET}/anything")


async def test_freeze_copies_every_file_with_its_digest_and_verifies(
    store: ObjectStore, model_dir: Path
) -> None:
    candidate = await local_candidate(model_dir, run_id="run-1")
    assert candidate.flavors["sklearn"]["sklearn_version"] == "1.5.0"
    assert candidate.has_signature
    assert candidate.requirements == "scikit-learn==1.5.0\n"

    prefix = f"s3://{BUCKET}/vision/iris/{unique('p')}"
    frozen = await freeze(candidate, store, prefix)

    expected = {
        path: hashlib.sha256((model_dir / path).read_bytes()).hexdigest()
        for path in ("MLmodel", "code/helpers.py", "model.pkl", "requirements.txt")
    }
    assert dict(frozen.files) == expected
    assert frozen.sha256 == manifest_digest(expected)
    assert frozen.model_uri == f"{prefix}/model"
    assert await store.get(f"{prefix}/model/code/helpers.py") == b"VALUE = 1\n"
    manifest = json.loads(await store.get(f"{prefix}/manifest.json"))
    assert manifest == {"files": expected, "sha256": frozen.sha256}

    assert await verify(store, frozen) == frozen
    assert (await verify(store, prefix, frozen.sha256)).files == frozen.files


async def test_a_changed_byte_fails_verification_naming_the_file(
    store: ObjectStore, model_dir: Path
) -> None:
    frozen = await freeze(
        await local_candidate(model_dir), store, f"s3://{BUCKET}/vision/iris/{unique('p')}"
    )
    original = await store.get(frozen.file_uri("model.pkl"))
    await store.put(frozen.file_uri("model.pkl"), bytes([original[0] ^ 1]) + original[1:])

    with pytest.raises(DigestMismatch, match=r"model\.pkl .* changed after it was frozen") as e:
        await verify(store, frozen.uri, frozen.sha256)
    assert e.value.path == "model.pkl"


async def test_a_deleted_file_fails_verification_naming_the_file(
    store: ObjectStore, model_dir: Path
) -> None:
    frozen = await freeze(
        await local_candidate(model_dir), store, f"s3://{BUCKET}/vision/iris/{unique('p')}"
    )
    await store.delete_prefix(frozen.file_uri("code"))

    with pytest.raises(DigestMismatch, match=r"lost its file code/helpers\.py"):
        await verify(store, frozen)


async def test_a_different_expected_digest_fails_verification(
    store: ObjectStore, model_dir: Path
) -> None:
    frozen = await freeze(
        await local_candidate(model_dir), store, f"s3://{BUCKET}/vision/iris/{unique('p')}"
    )
    with pytest.raises(DigestMismatch, match="does not match the recorded digest"):
        await verify(store, frozen.uri, "0" * 64)
