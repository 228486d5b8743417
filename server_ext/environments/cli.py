"""``mlteams-env``: the packages you installed, their reset, and project kernels.

mlteams-env list               what you installed with pip (in ~/.local), and where
mlteams-env reset [--yes]      remove them (the image's packages are never touched)
mlteams-env projects           the project folders and the state of their kernels
mlteams-env build DIR [--force] build DIR's requirements.txt (or environment.yml) as a kernel
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from server_ext import contract
from server_ext.environments import builder, user_site
from server_ext.environments.projects import FAILED, BadProjectPath, CannotBuild


def _print_plan(plan: user_site.ResetPlan) -> None:
    for package in plan.packages:
        print(f"  {package.name} {package.version}")
    for path in plan.paths:
        print(f"  remove {path}")


def cmd_list(args: argparse.Namespace) -> int:
    scheme = user_site.user_scheme()
    packages = user_site.installed(scheme)
    print(f"user base: {scheme.base}")
    print(f"packages in {scheme.site_packages}:")
    for package in packages:
        print(f"  {package.name} {package.version}")
    if not packages:
        print("  (none: only the image's packages are installed)")
    if not user_site.user_site_enabled():
        print("note: this Python does not use the user site, so these packages are not imported")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    scheme = user_site.user_scheme()
    plan = user_site.reset_plan(scheme)
    if not plan.paths:
        print(f"nothing to reset: {scheme.site_packages} is empty")
        return 0
    print("the reset removes the packages you installed:")
    _print_plan(plan)
    if not args.yes:
        if not sys.stdin.isatty():
            print("run again with --yes to remove them", file=sys.stderr)
            return 2
        if input("remove them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    removed = user_site.apply_reset(plan, scheme)
    print(f"removed {len(removed)} entries; {user_site.RESTART_NOTE}")
    return 0


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root or os.environ.get(contract.NOTEBOOK_ROOT) or Path.home()).resolve()


def cmd_projects(args: argparse.Namespace) -> int:
    store = builder.default_store(_root(args))
    projects = store.discover()
    for project in projects:
        status = store.status(project)
        print(f"{status['path']}  {status['state']}  kernel {status['kernel'] or '-'}")
    if not projects:
        print(f"no folder under {store.root} has a requirements.txt or an environment.yml")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    root = _root(args)
    folder = Path(args.dir).absolute()
    try:
        relative = folder.relative_to(root).as_posix()
    except ValueError:
        print(f"error: {args.dir} is not inside the notebook root {root}", file=sys.stderr)
        return 2
    store = builder.default_store(root)
    try:
        project = store.locate(relative)
        result = store.build(project, force=args.force)
    except (BadProjectPath, builder.NoProject, CannotBuild, builder.BuildBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.state == FAILED:
        print(result.log_tail, file=sys.stderr)
        print(f"error: {result.message}", file=sys.stderr)
        return 1
    print(result.message)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mlteams-env",
        description="Your Python packages and project kernels on your home volume.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the packages you installed with pip").set_defaults(fn=cmd_list)
    reset = sub.add_parser("reset", help="remove the packages you installed with pip")
    reset.add_argument("--yes", action="store_true", help="do not ask before removing")
    reset.set_defaults(fn=cmd_reset)
    for name, fn, text in (
        ("projects", cmd_projects, "the project folders and their kernels"),
        ("build", cmd_build, "build a project folder's kernel"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument(
            "--root", help="the notebook root (default: $MLTEAMS_NOTEBOOK_ROOT or your home)"
        )
        if name == "build":
            command.add_argument("dir", help="the project folder")
            command.add_argument("--force", action="store_true", help="rebuild even if unchanged")
        command.set_defaults(fn=fn)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.fn(args))


def run() -> None:
    sys.exit(main())
