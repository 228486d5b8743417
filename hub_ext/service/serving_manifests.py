"""``mlteams-serving-manifests``: write the champions' InferenceServices for GitOps.

With ``serving.mode: gitops`` the mlteams service renders each champion's InferenceService but
applies nothing; this command fetches what it renders (``GET /api/serving/manifests``, with a hub
token of a member of the teams, or an admin's) and writes one YAML file per InferenceService,
``<out>/<namespace>/<name>.yaml``, or prints them as one multi-document YAML stream. Exit status 2
means the service could not be asked or refused; the reason is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

FAILED = 2
TOKEN_VARIABLE = "JUPYTERHUB_API_TOKEN"
SERVICE_VARIABLE = "MLTEAMS_SERVICE_URL"


class FetchError(Exception):
    """The service could not be asked, or answered with an error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlteams-serving-manifests",
        description=(
            "Write the KServe InferenceServices of the teams' champion models, as the mlteams "
            "service renders them, for kubectl apply or a GitOps repository."
        ),
    )
    parser.add_argument(
        "--service-url",
        default=os.environ.get(SERVICE_VARIABLE),
        help=f"the mlteams service, such as https://hub.example.com/services/mlteams "
        f"(default: ${SERVICE_VARIABLE})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"a file holding a hub API token (default: ${TOKEN_VARIABLE})",
    )
    parser.add_argument("--team", help="only this team's models")
    parser.add_argument(
        "--out",
        type=Path,
        help="write <out>/<namespace>/<name>.yaml for each; without it, print them all",
    )
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait (30)")
    return parser


def fetch_manifests(
    service_url: str, token: str, team: str | None, timeout: float
) -> list[dict[str, Any]]:
    url = service_url.rstrip("/") + "/api/serving/manifests"
    if team:
        url += "?" + urllib.parse.urlencode({"team": team})
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise FetchError(f"the service answered {exc.code}: {_message(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"could not reach {url}: {reason}") from None
    except ValueError:
        raise FetchError(f"{url} did not answer JSON; is it the mlteams service?") from None
    manifests = body.get("manifests") if isinstance(body, dict) else None
    if not isinstance(manifests, list):
        raise FetchError(f"{url} answered without a list of manifests")
    return manifests


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return str(exc.reason)
    return str(body.get("message") or exc.reason) if isinstance(body, dict) else str(exc.reason)


def write_manifests(manifests: list[dict[str, Any]], out: Path | None, stdout: TextIO) -> None:
    if out is None:
        stdout.write(yaml.safe_dump_all(manifests, sort_keys=False))
        return
    for manifest in manifests:
        metadata = manifest["metadata"]
        folder = out / metadata["namespace"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{metadata['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        stdout.write(f"{path}\n")


def main(argv: Sequence[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    if not args.service_url:
        print(
            f"mlteams-serving-manifests: give --service-url or set {SERVICE_VARIABLE}",
            file=sys.stderr,
        )
        return FAILED
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(
                f"mlteams-serving-manifests: cannot read {args.token_file}: {exc.strerror}",
                file=sys.stderr,
            )
            return FAILED
    else:
        token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        print(
            f"mlteams-serving-manifests: give --token-file or set {TOKEN_VARIABLE}", file=sys.stderr
        )
        return FAILED
    try:
        manifests = fetch_manifests(args.service_url, token, args.team, args.timeout)
    except FetchError as exc:
        print(f"mlteams-serving-manifests: {exc}", file=sys.stderr)
        return FAILED
    write_manifests(manifests, args.out, stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
