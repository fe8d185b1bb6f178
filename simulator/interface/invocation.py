"""The command line as run, for the provenance of what a command writes.

Click parses the arguments and keeps only their values; the outputs should say the
command exactly as typed (``campaign-sim run sale-start-spike --set scale=1/10``). The
top-level group keeps its arguments while it runs a subcommand, whether they came from
``sys.argv`` or from a test's ``CliRunner``, and :func:`invocation` reads them there.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from typer.core import TyperGroup

if TYPE_CHECKING:
    from simulator.results.provenance import Invocation

__all__ = ["ArgvGroup", "invocation"]

_ARGS: ContextVar[tuple[str, ...]] = ContextVar("campaign_sim_args", default=())
"""The running command's arguments; set only while :class:`ArgvGroup` runs one."""
_META = "campaign_sim.args"


class ArgvGroup(TyperGroup):
    """The ``campaign-sim`` group: keeps its arguments as given while a command runs."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Keep the arguments as given (parsing consumes them), then parse as usual."""
        ctx.meta[_META] = tuple(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        """Run the subcommand with the arguments readable by :func:`invocation`."""
        token = _ARGS.set(ctx.meta.get(_META, ()))
        try:
            return super().invoke(ctx)
        finally:
            _ARGS.reset(token)


def invocation(overrides: Iterable[str] | None = None) -> Invocation:
    """The running command as typed, with its ``--set`` overrides."""
    # Imported here: the results room brings pandas, which ``--help`` need not wait for.
    from simulator.results.provenance import Invocation

    return Invocation.command_line(_ARGS.get(), overrides or [])
