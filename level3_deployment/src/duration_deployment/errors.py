"""The router's failures, one class each, with the HTTP status it answers.

Routes never build HTTP errors for these: :func:`duration_deployment.main.create_app` installs
one handler that answers ``{"detail": str(error), "errors": []}`` with :attr:`RouterError.status`
and counts it under :attr:`RouterError.kind` in ``duration_errors_total`` (level 1's metric).
"""

from __future__ import annotations

from duration_core import DurationCoreError


class RouterError(DurationCoreError):
    """A request the router cannot carry out.

    Attributes:
        status: The HTTP status to answer.
        kind: The error kind counted in the metrics; None counts the status's default kind
            (level 1's ``STATUS_ERROR_KINDS``).
    """

    status = 500
    kind: str | None = None


class DeploymentError(RouterError):
    """A deployment or control call was refused: a bad URI, an unverifiable download, a failed
    smoke test (422)."""

    status = 422
    kind = "deployment"


class RegistryUnavailableError(DeploymentError):
    """The registry cannot be reached (503); the message names its URI."""

    status = 503
    kind = "registry_unavailable"


class RegistryRefusedError(RegistryUnavailableError):
    """The registry answered but refused the router's credentials (401) or their permission
    (403); 503 like a registry that is down: the router keeps serving what it has. The message
    names the user and what it lacks.

    Attributes:
        moved: The aliases a multi-alias change had already moved when the registry refused
            (a refused call itself changes nothing).
    """

    moved: tuple[str, ...] = ()


class ConflictError(DeploymentError):
    """The call does not fit the current routing table (409), e.g. removing the champion."""

    status = 409


class NotFoundError(DeploymentError):
    """No variant of that name (404)."""

    status = 404


class NoModelDeployedError(RouterError):
    """A prediction was asked for while no live variant is deployed (503)."""

    status = 503


class UnknownVariantError(RouterError):
    """``X-Model-Variant`` names no live variant of the routing table (409: the request is
    well formed; the table, as it is now, cannot serve it)."""

    status = 409


class PredictionFailedError(RouterError):
    """The variant that answers, and the champion it falls back to, both failed (503)."""

    status = 503
