"""The ``avaturn-broker`` commands: tables for people, ``--json`` for scripts, a progress bar on
bulk ends, one line and an exit code (``client.Exit``) for every failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import requests
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from avaturn_broker_cli import __version__
from avaturn_broker_cli.client import AdminApi, CliError, Exit, Target, connect

EXIT_CODES = (
    "Exit codes: 0 done; 1 the API refused or failed, or a bulk end left sessions for the sweep; "
    "2 bad usage; 3 no credentials, region, stack or API URL; 4 not allowed (401/403); 5 unreachable."
)
app = typer.Typer(
    name="avaturn-broker",
    help="Operate an Avaturn Live session broker: list and end sessions, pause creates, read usage.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sessions_app = typer.Typer(help="Open sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


@dataclass
class Runtime:
    """What the commands talk through: the HTTP session (tests mount a fake API Gateway on it)."""

    http: requests.Session = field(default_factory=requests.Session)


@dataclass
class Cli:
    """One invocation: where the broker is, how to print, and the API client (made on first use)."""

    target: Target
    as_json: bool
    runtime: Runtime
    timeout: float
    out: Console = field(default_factory=lambda: Console(highlight=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    _api: AdminApi | None = None

    @property
    def api(self) -> AdminApi:
        """The admin API client. Raises ``CliError``."""
        if self._api is None:
            self._api = connect(self.target, self.runtime.http, self.timeout)
        return self._api

    def emit(self, data: Any, table: Table | str) -> None:
        """Print ``data`` as JSON (``--json``) or ``table`` for people."""
        if self.as_json:
            self.out.print_json(json.dumps(data))
        else:
            self.out.print(table)


def _cli(ctx: typer.Context) -> Cli:
    cli = ctx.find_object(Cli)
    assert cli is not None  # the callback always sets it
    return cli


@contextmanager
def _run(ctx: typer.Context) -> Iterator[Cli]:
    """The invocation's ``Cli``; a ``CliError`` raised while it is in use ends the command with
    its message on stderr and its exit code."""
    cli = _cli(ctx)
    try:
        yield cli
    except CliError as exc:
        cli.err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(exc.code) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avaturn-broker {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    stack_name: Annotated[
        str | None,
        typer.Option("--stack-name", "-s", envvar="AVATURN_BROKER_STACK", help="CloudFormation stack of the broker."),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", envvar="AVATURN_BROKER_API_URL", help="The broker's API URL (e.g. the local stack)."),
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", envvar="AWS_PROFILE", help="AWS profile.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region (default: the profile's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.", min=1)] = 35.0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Operate an Avaturn Live session broker through its /admin/ routes, signed with your AWS credentials."""
    runtime = ctx.obj if isinstance(ctx.obj, Runtime) else Runtime()
    ctx.obj = Cli(Target(stack_name, api_url, profile, region), as_json, runtime, timeout)


# -- reading -----------------------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context) -> None:
    """Whether creates are paused, how many sessions are active, and today's usage."""
    with _run(ctx) as cli:
        creates = cli.api.call("GET", "/admin/creates")
        active = sum(len(page["sessions"]) for page in _pages(cli.api, "active", None, 500))
        today = cli.api.call("GET", "/admin/usage", query={"group_by": "day"})
        data = {"api_url": cli.api.base_url, "creates": creates, "active_sessions": active, "today": today["total"]}
        table = Table(show_header=False, box=None)
        table.add_row("Broker", cli.api.base_url)
        table.add_row("Creates", _creates_text(creates))
        table.add_row("Active sessions", str(active))
        table.add_row(f"Usage {today['from']} (UTC)", _usage_text(today["total"]))
        cli.emit(data, table)


@sessions_app.command("list")
def list_sessions(
    ctx: typer.Context,
    status: Annotated[
        Literal["active", "pending", "terminating"], typer.Option(help="Which open sessions.")
    ] = "active",
    owner: Annotated[str | None, typer.Option(help="Only this owner's (e.g. ip:203.0.113.7, sub:...).")] = None,
    limit: Annotated[int, typer.Option(help="Sessions per page.", min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Start after this cursor (from a previous page).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Follow the cursor to the last page.")] = False,
) -> None:
    """List open sessions, the first to end first (never a token)."""
    with _run(ctx) as cli:
        page: dict[str, Any]
        if every:
            rows = [s for page in _pages(cli.api, status, owner, limit) for s in page["sessions"]]
            page = {"sessions": rows, "cursor": None}
        else:
            query = {"status": status, "owner": owner, "limit": limit, "cursor": cursor}
            page = cli.api.call("GET", "/admin/sessions", query=query)
        table = Table(box=box.SIMPLE)
        table.add_column("session", no_wrap=True)  # whole, to copy into `end`; the others wrap
        for column in ("owner", "engine", "profile", "created", "expires"):
            table.add_column(column, overflow="fold")
        for s in page["sessions"]:
            table.add_row(
                s["session_id"], s["owner"], s["engine"], s.get("profile") or "-",
                _short(s["created_at"]), _short(s["expires_at"]),
            )  # fmt: skip
        table.caption = f"{len(page['sessions'])} {status} (times UTC)" + (
            f"; more: --cursor {page['cursor']}" if page["cursor"] else ""
        )
        cli.emit(page, table)


@app.command()
def usage(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--from", help="First UTC day, YYYY-MM-DD (default: today).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last UTC day, YYYY-MM-DD (default: --from).")] = None,
    group_by: Annotated[
        Literal["owner", "engine", "profile", "day"], typer.Option("--group-by", help="Rows by this.")
    ] = "owner",
) -> None:
    """Sessions ended and seconds used, by owner, engine, profile or day (at most 93 days)."""
    with _run(ctx) as cli:
        report = cli.api.call("GET", "/admin/usage", query={"from": since, "to": until, "group_by": group_by})
        table = Table(group_by, "sessions", "seconds", "hours", box=box.SIMPLE)
        table.caption = f"sessions created {report['from']} to {report['to']} (UTC days)"
        for row in report["rows"]:
            table.add_row(row["key"], str(row["sessions"]), str(row["seconds"]), f"{row['seconds'] / 3600:.2f}")
        total = report["total"]
        table.add_section()
        table.add_row("total", str(total["sessions"]), str(total["seconds"]), f"{total['seconds'] / 3600:.2f}")
        cli.emit(report, table)


# -- acting ------------------------------------------------------------------------------------------


@app.command()
def end(ctx: typer.Context, session_id: Annotated[str, typer.Argument(help="The session's id.")]) -> None:
    """End one session, whoever owns it (end reason admin)."""
    with _run(ctx) as cli:
        result = cli.api.call("POST", f"/admin/sessions/{session_id}/end")
        session = result["session"]
        said = {
            "ended": "ended",
            "already_ended": f"had already ended ({session.get('end_reason') or session['status']})",
            "ending": "is being ended by another caller; the sweep finishes it if that fails",
        }[result["outcome"]]
        cli.emit(result, f"{session['session_id']} of {session['owner']}: {said}")


@app.command("end-all")
def end_all(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option(help="Only this owner's sessions (default: everyone's).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    batch: Annotated[int, typer.Option(help="Sessions per request (each within the API's 30 s).", min=1)] = 100,
) -> None:
    """End every active session (of one owner, or of everyone), batch after batch, with a progress bar."""
    with _run(ctx) as cli:
        whose = f"of {owner}" if owner else "of every owner"
        active = sum(len(page["sessions"]) for page in _pages(cli.api, "active", owner, 500))
        totals = {"examined": 0, "ended": 0, "failed": 0, "skipped": 0, "requests": 0}
        if active == 0:
            cli.emit(totals, f"No active session {whose}.")
            return
        if not yes:
            typer.confirm(f"End {active} active session(s) {whose}?", abort=True, err=True)
        columns = (TextColumn("ending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=cli.err, transient=False) as progress:
            bar = progress.add_task("end", total=active)
            more = True
            while more:
                summary = cli.api.call("POST", "/admin/end-sessions", body={"owner": owner, "limit": batch})
                totals["requests"] += 1
                for key in ("examined", "ended", "failed", "skipped"):
                    totals[key] += summary[key]
                progress.update(bar, completed=totals["examined"], total=max(active, totals["examined"]))
                more = summary["more"]
        text = f"Ended {totals['ended']} session(s) {whose} in {totals['requests']} request(s)"
        if totals["skipped"]:
            text += f"; {totals['skipped']} were being ended by someone else"
        if totals["failed"]:
            text += f"; {totals['failed']} failed (Avaturn did not confirm): the sweep retries them"
        cli.emit(totals, text + ".")
        if totals["failed"]:
            raise CliError(f"{totals['failed']} session(s) could not be ended now", Exit.FAILED)


@app.command()
def pause(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option(help="Why (shown by status and in the broker's log).")] = None,
) -> None:
    """Pause creates: every new session is refused (503 creates-paused) until resume."""
    with _run(ctx) as cli:
        state = cli.api.call("PUT", "/admin/creates", body={"paused": True, "reason": reason})
        cli.emit(state, _creates_text(state) + " (every function sees it within ControlCacheSeconds)")


@app.command()
def resume(ctx: typer.Context) -> None:
    """Resume creates."""
    with _run(ctx) as cli:
        state = cli.api.call("PUT", "/admin/creates", body={"paused": False})
        cli.emit(state, _creates_text(state))


# -- helpers -----------------------------------------------------------------------------------------


def _pages(api: AdminApi, status: str, owner: str | None, limit: int) -> Iterator[dict[str, Any]]:
    """Every page of GET /admin/sessions, following the cursor."""
    cursor = None
    while True:
        page: dict[str, Any] = api.call(
            "GET", "/admin/sessions", query={"status": status, "owner": owner, "limit": limit, "cursor": cursor}
        )
        yield page
        cursor = page["cursor"]
        if not cursor:
            return


def _creates_text(state: dict[str, Any]) -> str:
    if not state["paused"]:
        return "open" + (f" (since {state['updated_at']})" if state.get("updated_at") else "")
    reason = f": {state['reason']}" if state.get("reason") else ""
    return f"PAUSED since {state['updated_at']}{reason}"


def _usage_text(total: dict[str, Any]) -> str:
    return f"{total['sessions']} session(s) ended, {total['seconds']} s used"


def _short(iso: str) -> str:
    """``2026-11-30T19:04:00Z`` as ``11-30 19:04`` (UTC)."""
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).strftime("%m-%d %H:%M")
