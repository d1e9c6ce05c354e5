"""The `evoq` subcommands, one module per job; app/cli.py registers them on the Typer app.

Every module imports only typer at the top: the heavy code (torch, the model) is imported inside
the command that needs it, so `evoq --help` and argument errors answer at once."""
