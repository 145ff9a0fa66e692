"""Errors that mean "the user asked for something wrong": the CLI prints them as one line, exit 2."""


class UserError(Exception):
    """Bad input: unknown preset, bad override, missing data, corrupt artifact."""


class DataError(UserError):
    """A dataset cannot be found or read."""


class ArtifactError(UserError):
    """An artifact file is missing, corrupt, or does not match what was expected."""
