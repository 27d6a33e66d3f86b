"""MLflow's own authentication for the tests' ``mlflow server --app-name basic-auth``: its
configuration, its users and their grants (MLflow 3.17's REST API, as the admin).

``default_permission`` is ``NO_PERMISSIONS``: a user sees nothing it was not granted and
nothing it did not create (MLflow makes the creator of an experiment or a registered model
its ``MANAGE`` owner). So the grants below are the whole of what each user of the ladder can
do, and the tests that run with them show they are enough (level 3's README, "An
authenticated registry"). With MLflow's default ``READ``, every account could read every model
and run, and a test could not show what the router needs.
"""

from __future__ import annotations

import configparser
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

#: The registered model of the ladder (``duration_core.MODEL_NAME``; not imported: the
#: helpers do not depend on the levels).
MODEL = "nyc-taxi-duration"
#: ``(resource type, resource id or "*") -> permission`` for one user.
Grants = dict[tuple[str, str], str]
#: The pipeline (and level 4's loop) creates the experiment and the model, so it owns them:
#: nothing to grant. Against an experiment and a model someone else created, it needs
#: EDIT on the experiment and MANAGE on the model (README).
PIPELINE_GRANTS: Grants = {}
#: The router: read versions, their artifacts and runs; set aliases (EDIT) and delete the
#: ``challenger`` alias on promote (MLflow gates DeleteRegisteredModelAlias on MANAGE).
#: Experiment ids are only known once the pipeline ran, so every experiment ("*").
ROUTER_GRANTS: Grants = {("registered_model", MODEL): "MANAGE", ("experiment", "*"): "READ"}
#: Read only: deploy and load versions, never register one or move an alias.
READER_GRANTS: Grants = {("registered_model", MODEL): "READ", ("experiment", "*"): "READ"}

CONFIG = "basic_auth.ini"


@dataclass(frozen=True)
class Credentials:
    """One user of the server."""

    username: str
    password: str

    @property
    def env(self) -> dict[str, str]:
        """The environment variables MLflow's clients read them from."""
        return {
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }

    @property
    def auth(self) -> tuple[str, str]:
        """For ``httpx``'s ``auth=``."""
        return self.username, self.password


def auth_config(folder: Path) -> tuple[Path, Credentials]:
    """``folder/basic_auth.ini`` (the auth database beside it, a random admin password) and the
    admin's credentials; an existing file is kept, since MLflow reads the admin password only
    when it creates the admin (a restarted server keeps its users)."""
    path = folder / CONFIG
    config = configparser.ConfigParser()
    if path.is_file():
        config.read(path)
    else:
        config["mlflow"] = {
            "default_permission": "NO_PERMISSIONS",
            "database_uri": f"sqlite:///{folder / 'basic_auth.db'}",
            "admin_username": "admin",
            "admin_password": secrets.token_urlsafe(24),
            "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
            # MLflow hashes the password (PBKDF2) on every request: 0.35 s on a busy 2-core
            # machine, two minutes over the ~400 requests of the demo's level 3. Its cache of
            # checks that passed is per worker, and a password changed through the API leaves
            # it at once on that worker: one worker here, so nothing stale.
            "auth_cache_ttl_seconds": "600",
        }
        with path.open("w") as handle:
            config.write(handle)
    section = config["mlflow"]
    return path, Credentials(section["admin_username"], section["admin_password"])


def _call(
    url: str, admin: Credentials, path: str, body: dict[str, str], method: str = "POST"
) -> None:
    answer = httpx.request(method, f"{url}{path}", json=body, auth=admin.auth, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"{method} {path} {body} answered {answer.status_code}: {answer.text}")


def add_user(url: str, admin: Credentials, username: str, grants: Grants) -> Credentials:
    """Create ``username`` with a random password and ``grants``."""
    user = Credentials(username, secrets.token_urlsafe(16))
    _call(
        url,
        admin,
        "/api/2.0/mlflow/users/create",
        {"username": username, "password": user.password},
    )
    for (resource_type, resource_id), permission in grants.items():
        grant(url, admin, username, resource_type, resource_id, permission)
    return user


def grant(
    url: str,
    admin: Credentials,
    username: str,
    resource_type: str,
    resource_id: str,
    permission: str,
) -> None:
    """Give ``username`` ``permission`` (READ, EDIT, MANAGE...) on one resource, or on every
    resource of the type (``resource_id="*"``)."""
    body = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
    _call(url, admin, "/api/3.0/mlflow/users/permissions/grant", body | {"permission": permission})


def revoke(
    url: str, admin: Credentials, username: str, resource_type: str, resource_id: str
) -> None:
    """Take back the grant of ``username`` on one resource."""
    body = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
    _call(url, admin, "/api/3.0/mlflow/users/permissions/revoke", body)


def set_password(url: str, admin: Credentials, username: str, password: str) -> None:
    """Give ``username`` a new password (the old one is refused from then on)."""
    _call(
        url,
        admin,
        "/api/2.0/mlflow/users/update-password",
        {"username": username, "password": password},
        "PATCH",
    )
