"""The one exception a user sees: a message they can act on, printed in one line, exit code 2."""


class ScratchnetError(Exception):
    """Bad input or an impossible setup. The CLI prints ``scratchnet: <message>`` and exits 2.

    Programming errors (bugs) are ordinary exceptions and keep their traceback.
    """


class DataError(ScratchnetError):
    """A data file or data set that cannot be used as given (file, row and column named)."""


class ModelFileError(ScratchnetError):
    """A model file that is malformed, truncated or of an unknown format version."""


class DivergedError(ScratchnetError):
    """Training produced a non-finite loss. The partial result is attached, nothing is lost."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class OutputError(ScratchnetError):
    """An output path that cannot be written (the option and the path named)."""
