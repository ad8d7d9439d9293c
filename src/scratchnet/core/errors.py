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


class OptionError(ScratchnetError):
    """A training option with a value it cannot take (``scratchnet.training.options``).

    It carries the option's ``name``, the ``value`` and the ``reason`` ("must be a positive
    number, got -1"); ``others`` names the options a cross-option reason mentions as
    ``{name}`` placeholders.  ``str()`` is the Python wording (``lr: must be …``); each edge words
    it its own way with :meth:`worded` (``--lr`` on the command line, a field on the page).
    """

    def __init__(self, name: str, value, reason: str, others: tuple[str, ...] = ()):
        self.name, self.value, self.reason, self.others = name, value, reason, tuple(others)
        super().__init__(self.worded())

    def worded(self, spell=lambda name: name) -> str:
        """``<spelling of name>: <reason>`` with the other options' names spelled alike."""
        return f"{spell(self.name)}: {self.explain(spell)}"

    def explain(self, spell=lambda name: name) -> str:
        """The reason alone, the other options' names spelled by ``spell``."""
        return self.reason.format(**{o: spell(o) for o in self.others})
