"""The project's only custom exception."""


class ConfigError(ValueError):
    """Bad configuration or missing setup; the message says what is valid or what to run."""
