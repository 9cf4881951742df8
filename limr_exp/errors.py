"""User-facing errors: one clear line, printed by the CLI without a traceback."""


class LimrError(Exception):
    """Base class of every error that is the user's to fix (bad config, bad input file)."""


class ConfigError(LimrError):
    """An invalid configuration value; the message names the key to set."""


class DataError(LimrError):
    """An input file (dataset, trajectories, scores) that is missing, unreadable or malformed."""
