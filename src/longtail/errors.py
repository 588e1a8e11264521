"""Mistakes a user can fix: the command line prints their message instead of a traceback.

Every message names what is wrong, where, and how to fix it. ``longtail`` prints it as
``longtail: error: MESSAGE`` and exits with status 2; any other exception is a bug in longtail
and keeps its traceback. Each class also derives from the built-in error it refines, so
code that catches ``ValueError`` or ``FileNotFoundError`` keeps working.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave longtail: a config, data, a path or a checkpoint."""


class ConfigError(UserError, ValueError):
    """A configuration names something that does not exist or gives it a wrong option."""


class DataError(UserError, ValueError):
    """A dataset's files are there but hold something longtail cannot train on."""


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be read, or does not fit the model it is loaded into."""


class NotFound(UserError, FileNotFoundError):
    """A file or folder the user named (or longtail needs from an earlier step) is not there."""


class DatasetNotFound(NotFound):
    """A dataset is not where longtail looked; the message says where and how to provide it."""


class RunExists(UserError, FileExistsError):
    """A run directory already holds a run that this command would overwrite."""
