"""Errors that mean "the user asked for something wrong": the CLI prints them as one line, exit 2."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception's text squeezed onto one line (errors are printed as a single line)."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


class UserError(Exception):
    """Bad input: unknown preset, bad override, missing data, corrupt artifact."""


class DataError(UserError):
    """A dataset cannot be found or read."""


class ArtifactError(UserError):
    """An artifact file is missing, corrupt, or does not match what was expected."""


class StorageError(UserError):
    """A write failed for want of room or permission: the disk is full, a quota reached, the folder read-only."""
