"""``python -m tollhouse`` is the ``tollhouse`` command."""

from tollhouse.cli import main

main()
