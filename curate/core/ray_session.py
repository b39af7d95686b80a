"""The Ray session a filter run (or the bench) works in: a fresh local instance, or a cluster named by address.

A failed connection to a named cluster becomes a ConfigError that says what to check. Since Ray 2.59 a cluster
started with `ray.init()` or `ray start --head` (where a token exists) requires a token, and a client given an
explicit address never turns token auth on by itself, so a missing RAY_AUTH_MODE=token is the common cause.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from curate.core.errors import ConfigError, exception_chain

# Environment the Ray workers need as the driver has it (offline model loading, quiet imports).
# Object-storage endpoints and profiles travel too (credentials do not: a cluster's nodes have their own).
WORKER_ENV = (
    "HF_HUB_OFFLINE", "NO_ALBUMENTATIONS_UPDATE", "TOKENIZERS_PARALLELISM",
    "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "CURATE_STAGING",
)  # fmt: skip
TOKEN_AUTH_DOCS = "https://docs.ray.io/en/latest/ray-security/token-auth.html"


@contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Local Ray by default; `address` (or RAY_ADDRESS) joins a cluster. Reuses an already running session."""
    import ray

    if ray.is_initialized():
        yield
        return
    env = worker_env()
    address = cluster_address(address)
    try:
        ray.init(
            # "local": always a fresh instance. A bare ray.init() would silently join any cluster already running
            # on this machine (measured: a test's 2-node cluster), so only an explicit address joins one.
            address=address or "local",
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            runtime_env={"env_vars": env} if env else None,
            log_to_driver=True,
        )
    except ConnectionError as err:
        if not address:
            raise
        raise ConfigError(connect_error_message(address, err)) from err
    try:
        yield
    finally:
        ray.shutdown()


def worker_env() -> dict[str, str]:
    """The WORKER_ENV variables the driver has, for a runtime_env."""
    return {k: os.environ[k] for k in WORKER_ENV if k in os.environ}


def cluster_address(address: str | None) -> str | None:
    """The cluster a run joins: `address` (ray.address / --address), else RAY_ADDRESS; None means local Ray."""
    return address or os.environ.get("RAY_ADDRESS") or None


def connect_error_message(address: str, err: BaseException) -> str:
    """What to tell the user when joining the cluster at `address` failed with `err` (and its causes)."""
    causes = [f"{type(e).__name__}: {e}" for e in exception_chain(err)]
    chain = "\n".join(causes)
    if "AuthenticationError" in chain or "InvalidAuthToken" in chain:
        mode = os.environ.get("RAY_AUTH_MODE", "unset")
        return (
            f"the Ray cluster at {address} refused this client's authentication token (RAY_AUTH_MODE is {mode}). "
            "If the cluster uses token authentication, set RAY_AUTH_MODE=token and give its token in "
            f"RAY_AUTH_TOKEN or a file named by RAY_AUTH_TOKEN_PATH (default ~/.ray/auth_token); see {TOKEN_AUTH_DOCS}"
        )
    return (
        f"could not join the Ray cluster at {address} (ray.address, --address or RAY_ADDRESS): "
        f"{causes[0]}. Check that the cluster is up (`ray status --address {address}`) and reachable from here, "
        "or leave the address unset to run on a fresh local Ray instance"
    )
