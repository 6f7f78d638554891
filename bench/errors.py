"""User-facing errors.

Every problem a user can cause (bad name, bad config value, missing data folder, tampered
checkpoint) raises :class:`BenchError` with a one-line message. The CLI prints it as
``error: <message>`` and exits with status 2 -- never a traceback.
"""


class BenchError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class ConfigError(BenchError):
    """A config file or ``--set`` override is invalid."""


class UnknownNameError(BenchError, KeyError):
    """A registry lookup failed; the message carries a "did you mean" suggestion."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
