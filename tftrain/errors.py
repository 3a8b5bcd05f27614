"""Errors that the CLI turns into one-line messages and exit codes (no traceback)."""


class TftrainError(Exception):
    """Base of every error tftrain reports to the user; `exit_code` is what the CLI returns."""

    exit_code = 1


class UserError(TftrainError):
    """Bad input: config, file, name or flag. Exit 2, nothing written."""

    exit_code = 2


class ConfigError(UserError):
    """The YAML or a --set override does not describe a valid run."""


class DataError(UserError):
    """A dataset file is missing, unreadable or of the wrong shape."""


class DivergedError(TftrainError):
    """The loss became NaN or infinite."""

    exit_code = 3
