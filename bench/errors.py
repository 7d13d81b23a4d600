"""Exceptions shared across the package."""


class BenchError(Exception):
    """A problem with user input that the CLI reports in one line with exit code 2."""


class ConfigError(BenchError):
    """An invalid configuration value, profile or configuration file."""


class DataError(BenchError):
    """Signal data that cannot be used (non-finite values, bad shapes)."""


class NoResultsError(BenchError):
    """The report was requested but no runs are stored for the profile."""
