"""``mlteams-manifests``: print the per-team Kubernetes objects for GitOps.

Reads the team configuration from a Zero to JupyterHub values file (``hub.config.MLTeams``) or
from a plain MLTeams YAML or JSON file, validates it as the hub would, and prints the manifests
as multi-document YAML. Exit status 2 means the input could not be used; the reason is printed.
``--schema`` prints the JSON Schema of the MLTeams section instead
(``helm-values/mlteams.schema.json``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from hub_ext.policy import ConfigError, load_config
from hub_ext.policy.config import ROOT, render_json_schema
from hub_ext.policy.manifests import (
    DEFAULT_HUB_NAMESPACE,
    DEFAULT_HUB_SERVICE_ACCOUNT,
    cluster_manifests,
    render_team_manifests,
    to_yaml,
)
from hub_ext.policy.validation import is_dns_label, is_dns_subdomain

USAGE_ERROR = 2


class InputError(ValueError):
    """The input file cannot be read or does not hold a team configuration."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlteams-manifests",
        description=(
            "Print the Namespaces, ResourceQuotas and RBAC objects the MLTeams configuration "
            "needs, as YAML for kubectl apply or a GitOps repository."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--schema",
        action="store_true",
        help="print the JSON Schema of the MLTeams section (hub.config.MLTeams) and exit",
    )
    source.add_argument(
        "--values",
        type=Path,
        metavar="FILE",
        help="a Zero to JupyterHub values file; the configuration is read from hub.config.MLTeams",
    )
    source.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a YAML or JSON file holding the MLTeams section (with or without the MLTeams key)",
    )
    parser.add_argument(
        "--hub-namespace",
        default=None,
        help=(
            "namespace the hub runs in (default: MLTeams.hub_namespace from the file, "
            f"else {DEFAULT_HUB_NAMESPACE})"
        ),
    )
    parser.add_argument(
        "--hub-service-account",
        default=None,
        help=(
            "the hub's service account (default: MLTeams.hub_service_account, else "
            "hub.serviceAccount.name from --values, else "
            f"{DEFAULT_HUB_SERVICE_ACCOUNT}, as in Zero to JupyterHub)"
        ),
    )
    parser.add_argument(
        "--provisioning",
        action="store_true",
        help="also print the ClusterRole and binding that let the hub create these objects itself",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--teams-only",
        action="store_true",
        help="print only the per-team objects, not the cluster-scoped RBAC",
    )
    scope.add_argument(
        "--cluster-only",
        action="store_true",
        help="print only the cluster-scoped RBAC, which a cluster admin installs once",
    )
    return parser


def read_document(path: Path) -> Any:
    """Parse a YAML (or JSON) file with exactly one document."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML or JSON: {exc}") from exc


def _dig(document: Any, keys: Sequence[str], path: Path) -> Any:
    current = document
    walked: list[str] = []
    for key in keys:
        walked.append(key)
        if not isinstance(current, Mapping) or key not in current:
            raise InputError(f"{path} has no {'.'.join(walked)}")
        current = current[key]
    return current


def mlteams_from_values(document: Any, path: Path) -> Any:
    """The raw ``hub.config.MLTeams`` section of a values document."""
    return _dig(document, ("hub", "config", ROOT), path)


def mlteams_from_config(document: Any) -> Any:
    """The raw MLTeams section of a plain configuration document, unwrapping ``MLTeams:``."""
    if isinstance(document, Mapping) and set(document) == {ROOT}:
        return document[ROOT]
    return document


def _setting(mapping: Any, *keys: str) -> str | None:
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, Mapping) else None
    return mapping if isinstance(mapping, str) and mapping else None


def check_names(hub_namespace: str, service_account: str) -> None:
    """Refuse a hub namespace or service account Kubernetes would not accept."""
    if not is_dns_label(hub_namespace):
        raise InputError(f"the hub namespace must be a DNS-1123 label, got {hub_namespace!r}")
    if not is_dns_subdomain(service_account):
        raise InputError(
            f"the hub service account must be a DNS-1123 subdomain, got {service_account!r}"
        )


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    if args.schema:
        out.write(render_json_schema())
        return 0
    try:
        document = read_document(args.values if args.values is not None else args.config)
        if args.values is not None:
            section = mlteams_from_values(document, args.values)
        else:
            section = mlteams_from_config(document)
        config = load_config(section)
        hub_namespace = (
            args.hub_namespace or _setting(section, "hub_namespace") or DEFAULT_HUB_NAMESPACE
        )
        service_account = (
            args.hub_service_account
            or _setting(section, "hub_service_account")
            or _setting(document, "hub", "serviceAccount", "name")
            or DEFAULT_HUB_SERVICE_ACCOUNT
        )
        check_names(hub_namespace, service_account)
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=err)
        return USAGE_ERROR
    if args.cluster_only:
        manifests = cluster_manifests(
            hub_namespace=hub_namespace,
            hub_service_account=service_account,
            provisioning=args.provisioning,
        )
    else:
        manifests = render_team_manifests(
            config,
            hub_namespace=hub_namespace,
            hub_service_account=service_account,
            cluster_scoped=not args.teams_only,
            provisioning=args.provisioning,
        )
    out.write(to_yaml(manifests))
    return 0


def run() -> None:
    """Entry point of ``mlteams-manifests``."""
    sys.exit(main())
