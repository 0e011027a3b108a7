"""The ``jaqc`` command group, its entry point :func:`main` (one-line errors, exit code 2) and the options
several commands share."""

from __future__ import annotations

import sys
import traceback

import click
from rich.console import Console

from jaqc import __version__
from jaqc.core import JaqcError

_state = {"debug": False}


def nonempty_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an empty path (``-o ''`` would otherwise mean the current folder)."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("an empty path; give a file or folder name", ctx=ctx, param=param)
    return value


def console() -> Console:
    """A rich console: full width on a terminal, 200 columns when writing to a pipe or file."""
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jaqc")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """jaqc: joint search of CNN architecture, low-bit quantization and a BitFusion-style accelerator."""
    _state["debug"] = debug


def device_option(func):  # type: ignore[no-untyped-def]
    """``--device``: where the training runs (docs/search.md, "Devices and mixed precision")."""
    return click.option(
        "--device",
        default=None,
        metavar="cpu|cuda|cuda:N",
        help="Where to train (default: cuda when a GPU is available, else cpu). A run resumes on any device.",
    )(func)


def device_options(func):  # type: ignore[no-untyped-def]
    """``--device`` and ``--amp``: where the training runs and with which mixed precision."""
    from jaqc.device import AMP_MODES

    func = click.option(
        "--amp",
        type=click.Choice(AMP_MODES),
        default=None,
        help="Mixed precision of the forward passes: off (float32, the default) or bf16 (bfloat16 autocast).",
    )(func)
    return device_option(func)


def hw_model_option(default: str | None = "deployment", note: str = ""):  # type: ignore[no-untyped-def]
    """``--hw-model NAME``: which hardware cost model prices the command's layers (docs/cost_model.md)."""
    from jaqc.ir.accelerator import HW_MODELS

    return click.option(
        "--hw-model",
        "hw_model",
        type=click.Choice(HW_MODELS),
        default=default,
        show_default=default is not None,
        help="Hardware cost model: deployment (requantized outputs, packed depthwise layers) or simulator (the "
        "original BitFusion simulator, bit for bit)." + (f" {note}" if note else ""),
    )


#: ``--data`` of search and compare.
data_option = click.option(
    "--data",
    "data_root",
    default=None,
    help="CIFAR / ImageNet directory (tiny uses the built-in digits).",
    callback=nonempty_path,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaqc`` console script; returns the exit code (a torchrun worker exits with it
    instead, skipping an interpreter teardown that can abort it: :func:`jaqc.search.distributed.end_worker`)."""
    code = _run(argv)
    if "torch.distributed" in sys.modules:  # only a command that loaded it can be a torchrun worker's
        from jaqc.search.distributed import end_worker

        end_worker(code)
    return code


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="jaqc", standalone_mode=False)
    except JaqcError as exc:
        if _state["debug"]:
            traceback.print_exc()
        else:
            click.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:  # an environment failure no loader caught (a full disk, a vanished file): one line too
        if _state["debug"]:
            traceback.print_exc()
        else:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0
