"""HTTP handlers for environments that persist: the packages a user installed (and their reset)
and project kernels. Thin layers over ``server_ext.environments``; every handler requires
authentication and, for POST, the XSRF check of ``APIHandler``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from tornado import web

from server_ext.environments import builder, user_site
from server_ext.environments.projects import FAILED, BadProjectPath, CannotBuild
from server_ext.server.handlers import MLTeamsHandler


class EnvironmentBase(MLTeamsHandler):
    def store(self) -> builder.ProjectStore:
        return builder.default_store(Path(self.settings["server_root_dir"]))


class EnvironmentHandler(EnvironmentBase):
    """The user base and the packages the user installed there."""

    @web.authenticated
    async def get(self) -> None:
        scheme = user_site.user_scheme()
        packages = await asyncio.to_thread(user_site.installed, scheme)
        self.write_json(
            {
                "user_base": str(scheme.base),
                "site_packages": str(scheme.site_packages),
                "scripts": str(scheme.scripts),
                "user_site_enabled": user_site.user_site_enabled(),
                "persistent": user_site.home_persistent(os.environ),
                "packages": [{"name": d.name, "version": d.version} for d in packages],
            }
        )


class EnvironmentResetHandler(EnvironmentBase):
    """Remove the packages the user installed (never the image's)."""

    @web.authenticated
    async def post(self) -> None:
        scheme = user_site.user_scheme()

        def reset() -> user_site.ResetPlan:
            plan = user_site.reset_plan(scheme)
            user_site.apply_reset(plan, scheme)
            return plan

        plan = await asyncio.to_thread(reset)
        count = len(plan.packages)
        self.write_json(
            {
                "removed": plan.describe(),
                "message": f"removed {count} package{'s' * (count != 1)} from "
                f"{scheme.site_packages}; {user_site.RESTART_NOTE}",
            }
        )


class ProjectsHandler(EnvironmentBase):
    """The project folders under the notebook root and the state of their kernels."""

    @web.authenticated
    async def get(self) -> None:
        store = self.store()

        def listing() -> list[dict[str, Any]]:
            found = []
            for project in store.discover():
                try:
                    found.append(store.status(project))
                except OSError:  # removed while listing
                    continue
            return found

        self.write_json({"projects": await asyncio.to_thread(listing)})


class ProjectBuildHandler(EnvironmentBase):
    """Build a project folder's kernel (nothing to do when its file has not changed)."""

    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.fail(400, 'the body must be JSON such as {"path": "projects/churn"}')
        store = self.store()
        try:
            project = store.locate(body.get("path") if isinstance(body, dict) else None)
        except BadProjectPath as exc:
            self.fail(400, str(exc))
        except builder.NoProject as exc:
            self.fail(404, str(exc))
        try:
            result = await asyncio.to_thread(store.build, project)
        except builder.BuildBusy as exc:
            self.fail(409, str(exc))
        except CannotBuild as exc:
            self.fail(422, str(exc))
        self.write_json(result.to_json(), status=422 if result.state == FAILED else 200)


def environment_handlers() -> list[tuple[str, type]]:
    return [
        (r"/mlteams/environment", EnvironmentHandler),
        (r"/mlteams/environment/reset", EnvironmentResetHandler),
        (r"/mlteams/projects", ProjectsHandler),
        (r"/mlteams/projects/build", ProjectBuildHandler),
    ]
