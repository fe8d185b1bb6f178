"""``python -m simulator`` is the ``campaign-sim`` command."""

from simulator.interface.cli import main

main()
