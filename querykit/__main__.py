"""``python -m querykit``: the command line, as the ``querykit`` script."""

from querykit.cli import main

main()
