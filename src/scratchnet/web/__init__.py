"""The playground: a local web page that trains a network live and shows the math.

``scratchnet playground`` serves it (``commands/web.py``); :func:`scratchnet.web.app.create_app`
builds the FastAPI application.  ``session`` (pure numpy) holds one tab's run, ``inputs`` checks
what a page asks for, ``live`` streams a run over a WebSocket, ``formula`` writes ∂E/∂w_k.
Importing this package imports no web framework.
"""
from ..core.errors import ScratchnetError


class PlaygroundError(ScratchnetError):
    """A request the playground refuses; the message is shown on the page as is."""
