"""The project's exceptions: bad setup (ConfigError) and filter bugs (FilterBugError), and how to walk the
wrapping that Ray puts around them."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad configuration or missing setup; the message says what is valid or what to run."""


class FilterBugError(RuntimeError):
    """A filter raised on data it should have given a reason: a bug. Names the filter and the sample key."""


def exception_chain(err: BaseException) -> list[BaseException]:
    """`err` and everything it wraps (__cause__, __context__, and Ray's `.cause`), each once, outermost first."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    stack: list[BaseException | None] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        chain.append(e)
        stack += [getattr(e, "cause", None), e.__context__, e.__cause__]  # popped cause first
    return chain
