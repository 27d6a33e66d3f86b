"""``duration-deploy pipeline``: level 2's training pipeline into the router's registry, then
the one call that deploys the new version."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from duration_deployment.client import CallError, RouterClient


def train_and_deploy(args: argparse.Namespace, client: RouterClient) -> dict[str, Any]:
    """Train (level 2) with offline promotion off when the router already has a champion,
    then deploy the new version as challenger."""
    from duration_training import PipelineConfig, run_pipeline
    from duration_training.tracking import absolute_sqlite

    state = client.call("GET", "/deployments", params={"history": 0})
    # Train into the router's registry: a version registered anywhere else would not be the
    # one the router deploys under the same number.
    registry = state["registry"]
    if args.tracking_uri and absolute_sqlite(args.tracking_uri) != registry:
        raise CallError(
            f"--tracking-uri {args.tracking_uri} is not the router's registry {registry}: "
            "leave it out to train into the router's registry"
        )
    if registry.startswith("sqlite:///") and not Path(registry.removeprefix("sqlite:///")).exists():
        raise CallError(f"the router's registry {registry} is not reachable from here")
    serving = any(v["variant"] == "champion" for v in state["table"]["variants"])
    overrides: dict[str, Any] = {"offline_promotion": not serving}
    if args.candidates:
        overrides["candidates"] = tuple(c.strip() for c in args.candidates.split(",") if c.strip())
    config = PipelineConfig(**overrides)
    started = time.perf_counter()
    result = run_pipeline(args.train, args.val, config=config, tracking_uri=registry)
    summary = result.summary()
    if not serving and "champion" in result.aliases_moved:
        deployment = client.call(
            "POST", "/deployments", json={"model_uri": result.version, "variant": "champion"}
        )
    else:
        body = {"model_uri": result.version, "variant": "challenger"}
        if args.weight is not None:
            body["weight"] = args.weight
        try:
            deployment = client.call("POST", "/deployments", json=body)
        except CallError as exc:
            # The version is registered whatever the router said: say how to try again.
            raise CallError(
                f"{exc}; v{result.version} is registered: deploy it again with "
                f"duration-deploy deploy {result.version}"
                + ("" if args.weight is None else f" --weight {args.weight}")
            ) from None
    summary["deployment"] = deployment
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary
