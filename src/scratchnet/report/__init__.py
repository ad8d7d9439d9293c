"""The PS5 report: figures, diagram, derivation, demos and the offline page."""
