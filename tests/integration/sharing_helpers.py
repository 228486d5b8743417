"""Acting as a signed-in user of a rig hub: a user's own token, the mlteams service, a server."""

from __future__ import annotations

from typing import Any

import requests

from devenv.hub import LocalHub

SERVICE_API = "/services/mlteams/api"


def signed_in(hub: LocalHub, user: str) -> requests.Session:
    """A session of ``user`` signed in through the hub's login form; the caller closes it."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=30)
    done = session.post(
        f"{hub.url}/hub/login",
        data={
            "username": user,
            "password": hub.password,
            "_xsrf": session.cookies.get("_xsrf", path="/hub/"),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 302, done.text
    return session


def user_token(hub: LocalHub, user: str, note: str = "sharing test") -> str:
    """A new API token of ``user``, asked for the way a person does: sign in, then ask the hub."""
    with signed_in(hub, user) as session:
        made = session.post(
            f"{hub.url}/hub/api/users/{user}/tokens",
            json={"note": note},
            headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        token: str = made.json()["token"]
        return token


def as_user(hub: LocalHub, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call ``path`` (below the hub's URL) with a user's token: ``(status, JSON or text)``."""
    response = requests.request(
        method,
        hub.url + path,
        json=body,
        headers={"Authorization": f"token {token}"},
        allow_redirects=False,
        timeout=60,
    )
    try:
        return response.status_code, response.json() if response.content else None
    except ValueError:
        return response.status_code, response.text


def share(hub: LocalHub, token: str, target: dict[str, str], server: str = "") -> tuple[int, Any]:
    return as_user(hub, token, "POST", f"{SERVICE_API}/shares/{server}", target)


def unshare(hub: LocalHub, token: str, target: dict[str, str], server: str = "") -> tuple[int, Any]:
    return as_user(hub, token, "DELETE", f"{SERVICE_API}/shares/{server}", target)


def opens_server(hub: LocalHub, token: str, owner: str) -> int:
    """The status a user's token gets from ``owner``'s server (its Jupyter API)."""
    status, _ = as_user(hub, token, "GET", f"/user/{owner}/api/status")
    return status
