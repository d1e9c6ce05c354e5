"""`evoq upload`: send image files, folders and zips to a server's corpus."""

from __future__ import annotations

from pathlib import Path

import typer

from app.commands.options import default_server, fail


def upload(
    folder: list[str] = typer.Argument(..., help="Folders, image files and .zip archives."),
    server: str = typer.Option(default_server(), help="URL of the running server."),
    train_opt_out: bool = typer.Option(False, help="Store the images but never train on them."),
    token: str | None = typer.Option(
        None, envvar="EVOQ_TOKEN", help="Bearer token (the write token when the server sets one)."
    ),
) -> None:
    """Send images to the corpus, in as many requests as the server's upload limits need."""
    from tqdm import tqdm

    from app.client import ApiError, Client, image_files

    for item in folder:
        if not Path(item).exists():
            raise fail(f"no such file or folder: {item}")
    total = sum(1 for _ in image_files(folder))
    if not total:
        raise fail("no image or .zip files found in " + ", ".join(folder))
    with (
        Client(server, token=token) as api,
        tqdm(total=total, desc="uploading", unit="file") as bar,
    ):
        try:
            result = api.upload(
                folder, train_opt_out=train_opt_out, on_batch=lambda n, _r: bar.update(n)
            )
        except ApiError as exc:
            raise fail(f"{exc.code} ({exc.status}): {exc.detail}", 1) from exc
    for item in result.results:
        if item.status == "rejected":
            typer.echo(f"rejected {item.filename}: {item.reason}: {item.detail}", err=True)
    typer.echo(
        f"stored {result.stored}, duplicates {result.duplicates}, rejected {result.rejected}"
    )
    if result.rejected and not (result.stored or result.duplicates):
        raise typer.Exit(1)
