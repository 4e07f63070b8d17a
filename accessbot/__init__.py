"""``python -m accessbot``: the same command line as the ``accessbot`` script (the code lives in ``bot/``)."""
