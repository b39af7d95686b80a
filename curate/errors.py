"""The project's exceptions: bad setup (ConfigError) and filter bugs (FilterBugError)."""


class ConfigError(ValueError):
    """Bad configuration or missing setup; the message says what is valid or what to run."""


class FilterBugError(RuntimeError):
    """A filter raised on data it should have given a reason: a bug. Names the filter and the sample key."""
