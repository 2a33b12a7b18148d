"""``querykit sql``: show the SQL of named queries, inline, as JSON, or EXPLAINed; run one
with ``--run``; or print the DDL.

Placeholders: the pretty SQL numbers its parameters ``$1, $2``, as PostgreSQL's
logs and EXPLAIN do, next to ``-- params: $1 = ...``; ``"sql"`` in ``--json``
(``.to_sql().sql``, what psycopg sends) has ``%s`` in their place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..embedded import database_url
from ..errors import ConfigError, DatabaseError
from ._common import EXIT_FAILED, SHARED, Common, with_options

if TYPE_CHECKING:
    from ..named import NamedQuery

PLACEHOLDER_LEGEND = (
    "-- Parameters are numbered $1, $2... here, as in PostgreSQL's logs and EXPLAIN; the SQL\n"
    '-- psycopg is sent (.to_sql().sql, "sql" in --json, server errors) has %s in their place.'
)


@with_options(Common, *SHARED)
def sql(
    common: Common,
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
    run: Annotated[
        bool,
        typer.Option(
            "--run",
            help="Run the named query (module:name) and print its rows: a table, or JSON with "
            "--json. A write is committed.",
        ),
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help="An argument of the query function for --run (repeatable), typed by its "
            "annotation: -p hours=48 -p status=FAILED.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=0, help='Rows --run prints; the rest are counted ("… N more"). 0: all.'
        ),
    ] = 20,
) -> None:
    """Print the SQL of named queries: name, pretty SQL and parameters; or run one (--run).

    Named queries are the public query objects of a module, and its public
    functions that return a query (called with their defaults). Public functions
    that cannot be shown (no return annotation, a parameter without a default)
    are listed on stderr with what they need.

    The pretty SQL numbers parameters $1, $2... (as PostgreSQL's logs do);
    "sql" in --json is what psycopg is sent, with %s in their place.
    """
    # The query layer (SQLAlchemy) loads when this command runs, not with the CLI.
    from ..named import ddl, find_named

    with common.errors():
        settings = common.settings()
        if ddl_:
            text = ddl(target or settings.schema, settings)
            if common.json:
                common.emit_json({"module": target or settings.schema, "ddl": text})
            else:
                typer.echo(text)
            return
        if param and not run:
            raise ConfigError("--param gives arguments to --run; add --run")
        if run and (inline or explain_ or analyze):
            raise ConfigError(
                "--run prints rows, --inline/--explain/--analyze print SQL: use one or the other"
            )
        if run:
            _run(common, target, param or [], limit)
            return
        found = find_named(target, settings)
        for skipped in found.skipped:
            common.info(f"warning: skipped {skipped.target}: {skipped.reason}")
        named = found.queries
        url = database_url(settings) if (explain_ or analyze) else None
        payload = [_describe(q, inline, url, analyze) for q in named]
        if common.json:
            common.emit_json(payload)
        else:
            if not inline and any(s["params"] for item in payload for s in item["statements"]):
                typer.echo(PLACEHOLDER_LEGEND + "\n")
            for item in payload:
                _print(item, inline)
        failed = [item["name"] for item in payload if any("error" in s for s in item["statements"])]
        if failed:
            # Every plan was printed; the ones the server refused say why in their place.
            what = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
            if not common.json:
                typer.echo(f"error: {what} failed for {', '.join(failed)} (see above)", err=True)
            if _undefined_table(payload):
                _hint_migrations(common)
            raise typer.Exit(EXIT_FAILED)


def _undefined_table(payload: list[dict[str, Any]]) -> bool:
    return any(s.get("sqlstate") == "42P01" for item in payload for s in item["statements"])


def _hint_migrations(common: Common) -> None:
    """A missing table on a database with pending migrations: say so, and how to migrate."""
    from ..named import not_migrated_hint

    hint = not_migrated_hint(common.settings())
    if hint:
        typer.echo(f"hint: {hint}", err=True)


def _run(common: Common, target: str | None, params: list[str], limit: int) -> None:
    from ..named import named_for_run, run_named

    texts: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE, e.g. --param hours=48")
        texts[name.strip()] = value
    settings = common.settings()
    if target is None:
        raise ConfigError("--run runs one named query: give module:name")
    named, arguments = named_for_run(target, settings, texts)
    try:
        result = run_named(named, database_url(settings), arguments, limit=limit)
    except DatabaseError as exc:
        if exc.sqlstate == "42P01":
            _hint_migrations(common)
        raise
    if common.json:
        common.emit_json(result.to_dict())
    elif result.written is not None:
        typer.echo(f"{result.written} row(s) written")
    else:
        from ._table import render_table

        typer.echo(render_table(result.columns, result.rows))
        if result.more:
            typer.echo(
                f"… {result.more} more ({result.total} rows in all; --limit 0 shows them all)"
            )
        else:
            typer.echo(f"({result.total} row{'' if result.total == 1 else 's'})")


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
                item["sqlstate"] = exc.sqlstate
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
