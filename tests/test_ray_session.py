"""What a failed join of a named Ray cluster tells the user (the live token-auth case is in test_ray_cluster.py)."""

from __future__ import annotations

import pytest
from ray.exceptions import AuthenticationError

from curate.core.ray_session import cluster_address, connect_error_message


def _chained(inner: BaseException, address: str) -> ConnectionError:
    """The shape ray.init raises: ConnectionError from RuntimeError("Failed to connect to GCS...") from inner."""
    try:
        try:
            raise inner
        except BaseException as e:
            raise RuntimeError("Failed to connect to GCS. Last connection error: ...") from e
    except RuntimeError as e:
        err = ConnectionError(f"Failed to connect to Ray cluster at {address}")
        err.__cause__ = e
        return err


def test_a_refused_token_names_the_variables_to_set(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    err = _chained(
        AuthenticationError("RPC error: InvalidAuthToken: Authentication token is missing"), "10.0.0.5:6379"
    )
    msg = connect_error_message("10.0.0.5:6379", err)
    assert msg.startswith("the Ray cluster at 10.0.0.5:6379 refused this client's authentication token")
    assert "RAY_AUTH_MODE is unset" in msg
    assert "RAY_AUTH_MODE=token" in msg and "RAY_AUTH_TOKEN" in msg and "RAY_AUTH_TOKEN_PATH" in msg


def test_an_unreachable_cluster_says_how_to_check_it():
    err = _chained(TimeoutError("deadline exceeded"), "10.0.0.5:6379")
    msg = connect_error_message("10.0.0.5:6379", err)
    assert msg.startswith("could not join the Ray cluster at 10.0.0.5:6379")
    assert "ConnectionError: Failed to connect to Ray cluster at 10.0.0.5:6379" in msg
    assert "ray status --address 10.0.0.5:6379" in msg and "token" not in msg


def test_a_context_cycle_does_not_hang():
    a, b = ConnectionError("a"), RuntimeError("b")
    a.__context__, b.__context__ = b, a
    assert connect_error_message("x:1", a).startswith("could not join the Ray cluster at x:1")


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [(None, None, None), ("h:1", None, "h:1"), (None, "e:2", "e:2"), ("h:1", "e:2", "h:1"), ("", "", None)],
)
def test_the_address_comes_from_config_then_ray_address(monkeypatch, given, env, expected):
    if env is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", env)
    assert cluster_address(given) == expected
