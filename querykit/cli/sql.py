"""``querykit sql``: show the SQL of named queries, inline, as JSON, or EXPLAINed; or the DDL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..embedded import database_url
from ..errors import DatabaseError
from ._common import (
    EXIT_FAILED,
    Common,
    ConfigOpt,
    DatabaseUrlOpt,
    JsonOpt,
    QuietOpt,
    VerboseOpt,
)

if TYPE_CHECKING:
    from ..named import NamedQuery


def sql(
    target: Annotated[
        str | None,
        typer.Argument(
            help="module or module:name. Default: the modules in the 'queries' setting.",
            show_default=False,
        ),
    ] = None,
    inline: Annotated[
        bool, typer.Option("--inline", help="Literal SQL with the values in it: pastes into psql.")
    ] = False,
    explain_: Annotated[
        bool, typer.Option("--explain", help="Run EXPLAIN on the database and print the plan.")
    ] = False,
    analyze: Annotated[
        bool,
        typer.Option(
            "--analyze", help="EXPLAIN ANALYZE: runs the query, in a transaction rolled back."
        ),
    ] = False,
    ddl_: Annotated[
        bool,
        typer.Option("--ddl", help="Print CREATE statements for the schema module instead."),
    ] = False,
    database_url_: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the SQL of named queries: name, pretty SQL and parameters.

    Named queries are the public query objects of a module, and its public
    functions that return a query (called with their defaults).
    """
    # The query layer (SQLAlchemy) loads when this command runs, not with the CLI.
    from ..named import ddl, load_named

    common = Common(database_url_, config, json, quiet, verbose)
    with common.errors():
        settings = common.settings()
        if ddl_:
            text = ddl(target or settings.schema, settings)
            if json:
                common.emit_json({"module": target or settings.schema, "ddl": text})
            else:
                typer.echo(text)
            return
        named = load_named(target, settings)
        url = database_url(settings) if (explain_ or analyze) else None
        payload = [_describe(q, inline, url, analyze) for q in named]
        if json:
            common.emit_json(payload)
        else:
            for item in payload:
                _print(item, inline)
        failed = [item["name"] for item in payload if any("error" in s for s in item["statements"])]
        if failed:
            # Every plan was printed; the ones the server refused say why in their place.
            what = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
            if not json:
                typer.echo(f"error: {what} failed for {', '.join(failed)} (see above)", err=True)
            raise typer.Exit(EXIT_FAILED)


def _describe(q: NamedQuery, inline: bool, url: str | None, analyze: bool) -> dict[str, Any]:
    from .. import codecs
    from ..named import explain, statements_of

    statements = []
    for compiled in statements_of(q.query):
        item: dict[str, Any] = {
            "sql": compiled.sql,
            "params": [codecs.json_safe(p) for p in compiled.params],
            "pretty": compiled.pretty(),
            "inline": compiled.script() if compiled.settings else compiled.inline() + ";",
            "settings": dict(compiled.settings),
        }
        if url is not None:
            try:
                item["plan"] = explain(url, compiled, analyze=analyze)
            except DatabaseError as exc:  # this statement only: the others still get a plan
                item["plan"] = None
                item["error"] = str(exc)
        statements.append(item)
    return {
        "name": q.target,
        "signature": q.signature,
        "doc": q.doc,
        "sql": statements[0]["sql"],
        "params": statements[0]["params"],
        "statements": statements,
    }


def _print(item: dict[str, Any], inline: bool) -> None:
    typer.secho(f"-- {item['name']}{item['signature']}", bold=True)
    if item["doc"]:
        for line in item["doc"].splitlines():
            typer.echo(f"-- {line}".rstrip())
    for n, statement in enumerate(item["statements"]):
        if len(item["statements"]) > 1:
            typer.echo(f"-- statement {n + 1} of {len(item['statements'])}")
        if inline:
            typer.echo(statement["inline"])
        else:
            for name, value in statement["settings"].items():
                typer.echo(f"-- SET LOCAL {name} = {value}")
            typer.echo(statement["pretty"] + ";")
            if statement["params"]:
                from ..named import format_params

                params = format_params(statement["params"])
                typer.echo(f"-- params: {params}")
        if statement.get("error"):
            typer.echo(f"-- plan failed: {statement['error']}")
        elif "plan" in statement:
            typer.echo("-- plan:")
            for line in statement["plan"].splitlines():
                typer.echo(f"--   {line}")
    typer.echo()
