"""Errors caused by bad input (config, data, files), as opposed to bugs.

Every such error class derives from ``InputError`` (and from the builtin it has always been, e.g. ``ValueError``),
so the CLI can tell them apart without importing the modules that raise them: a job that only reads JSON pays
for no torch import. The CLI prints these as one clear line (they all name the thing and the fix) and exits 2;
anything else is a bug and keeps its traceback.

    >>> from itr.config import ConfigError
    >>> isinstance(ConfigError("unknown key 'be.marign'"), InputError)
    True
"""


class InputError(Exception):
    """Bad input: the message names the file or key and the command or edit that fixes it."""


# FileNotFoundError is bad input too (a path given on the command line, a missing MLflow store).
USER_ERRORS = (InputError, FileNotFoundError)
