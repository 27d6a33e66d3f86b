"""A registry that refuses the router's credentials (HTTP 401) or their permission (403): the
503 that says whose credentials and which permission the call needs (level 3's README, "An
authenticated registry"; measured on MLflow 3.17's basic-auth app)."""

from __future__ import annotations

from mlflow.utils.credentials import get_default_host_creds

from duration_deployment.errors import RegistryRefusedError

#: MLflow's error codes for an HTTP 401 and 403 (``mlflow.utils.rest_utils.get_error_code``).
_REFUSED = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}
#: What each call needs on a server that runs MLflow's basic-auth app.
NEEDS_READ = "READ on the registered model and on the experiment of its runs"
NEEDS_EDIT = "EDIT on the registered model"
NEEDS_MANAGE = "MANAGE on the registered model (MLflow gates deleting an alias on it)"


def who(uri: str) -> str:
    """Whose credentials MLflow sends to the registry at ``uri`` (it reads them from
    ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``), for messages;
    never the secret itself."""
    creds = get_default_host_creds(uri)  # type: ignore[no-untyped-call]
    if creds.username:
        return f"user {creds.username!r}"
    if creds.token:
        return "the token of MLFLOW_TRACKING_TOKEN"
    return "no credentials (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are unset)"


def refusal(uri: str, what: str, exc: Exception, needs: str) -> RegistryRefusedError | None:
    """The 503 for an MLflow error that is a refusal (HTTP 401 or 403), else None.

    Args:
        uri: The registry.
        what: What the router was doing (``cannot resolve models:/...``).
        exc: An ``MlflowException`` (REST calls) or a ``requests`` ``HTTPError`` (artifact
            downloads).
        needs: The permission the call needs, named in a 403's message.
    """
    status = _REFUSED.get(str(getattr(exc, "error_code", "")))
    response = getattr(exc, "response", None)
    if status is None and getattr(response, "status_code", None) in (401, 403):
        status = response.status_code  # type: ignore[union-attr]
    if status == 401:
        return RegistryRefusedError(
            f"{what}: the model registry {uri} refused the credentials of "
            f"{who(uri)} (HTTP 401: unknown user or wrong password)"
        )
    if status == 403:
        return RegistryRefusedError(
            f"{what}: the model registry {uri} denied {who(uri)} permission "
            f"(HTTP 403): this needs {needs}"
        )
    return None
