"""What every ``jukinet`` command shares: the ``--data-dir`` option, the error console, and the
installation of the data directory opened through the composition root (:mod:`jukinet.bootstrap`).

A command never opens a database or loads a key itself: it asks :func:`installation` for the
installation and closes it when done. Errors are printed as ``code: message`` (Japanese) and the
command exits 2.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NoReturn

import typer
from rich.console import Console

from jukinet.bootstrap import Installation, bootstrap
from jukinet.config import DEFAULT_DATA_DIR, Config
from jukinet.errors import JukinetError

console = Console(stderr=True)
DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="データディレクトリ", show_default=True)


def fail(e: JukinetError) -> NoReturn:
    """Print ``code: message`` and exit 2."""
    console.print(f"[red]{e.code}[/red]: {e.message}")
    raise typer.Exit(2)


def load_config(data_dir: Path) -> Config:
    """The configuration of ``data_dir`` (no database opened); a coded exit when there is none."""
    try:
        return Config.load(data_dir)
    except JukinetError as e:
        fail(e)


def open_installation(source: Path | Config) -> Installation:
    """The installation of ``source`` (a data directory or a loaded config); a coded exit on errors.
    The caller closes it (prefer :func:`installation`)."""
    try:
        return bootstrap(source)
    except JukinetError as e:
        fail(e)


@contextmanager
def installation(source: Path | Config) -> Iterator[Installation]:
    """``with installation(data_dir) as inst:`` — open, use, close."""
    inst = open_installation(source)
    try:
        yield inst
    finally:
        inst.close()
