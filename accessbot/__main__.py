"""``python -m accessbot …`` runs :func:`bot.cli.main`, exactly as the ``accessbot`` console script does."""

from bot.cli import main

raise SystemExit(main())
