"""``jaqc passes``: list the available passes (built-in and plugins) with their options."""

from __future__ import annotations

import click

from .app import cli


@cli.command("passes")
def list_passes() -> None:
    """List the available passes (built-in and plugins) with their options."""
    import attrs

    from jaqc.passes import available_passes, get_pass_class

    for name in available_passes():
        cls = get_pass_class(name)
        opts = ", ".join(f"{f.name}={f.default}" for f in attrs.fields(cls) if f.init)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name}{{{opts}}}  {doc}" if opts else f"{name}  {doc}")
