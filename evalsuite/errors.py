"""Errors that a user can act on. Each message is one line and names the fix."""

from __future__ import annotations


class EvalsuiteError(Exception):
    """Base class: the command-line interface prints the message and exits with status 2."""


class DataError(EvalsuiteError):
    """A dataset file or record is malformed."""


class SpecError(EvalsuiteError):
    """A model, judge or adapter spec cannot be used."""


class ConfigError(EvalsuiteError):
    """A configuration file or option is invalid."""
