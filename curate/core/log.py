"""Logging setup for the command-line entry points."""

import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once: one line per event, to stderr."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
