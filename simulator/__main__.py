"""``python -m simulator`` is the ``campaign-sim`` command."""

from simulator.cli import main

main()
