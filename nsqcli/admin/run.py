"""An admin action from start to exit: ask nsqlookupd where to act, confirm what destroys
messages, act, report one line per daemon, and exit with the table's status.

Discovery and the action run on two event loops, with the confirmation in between: the question
is asked with the default signal handling, so Ctrl-C at it exits 130 at once.
"""

from __future__ import annotations

from typing import Any, NoReturn, Sequence

import click

from nsqcli.admin.plan import ABSENT, DELETE, DESTRUCTIVE, DONE, KEPT, Plan, Subject
from nsqcli.admin.plan import confirmation, dry_run_lines, verdict
from nsqcli.cli.console import Console
from nsqcli.cli.exit_codes import ExitStatus
from nsqcli.cli.options import HttpSettings
from nsqcli.cli.runner import exit_with, run_to_status


def _session(settings: HttpSettings, agent: str, console: Console) -> Any:
    from nsqcli.cli.nsq_http import HttpSession

    return HttpSession(settings.timeouts, agent, trace=console.info)


def _print(console: Console, lines: Sequence[str]) -> None:
    if lines:
        console.out.write("".join(line + "\n" for line in lines).encode("utf-8", "replace"))
        console.out.flush()


def run_action(action: str, subjects: list[Subject], settings: HttpSettings, console: Console,
               agent: str, yes: bool, dry_run: bool, all_nodes: bool) -> NoReturn:
    destructive = action in DESTRUCTIVE and not dry_run
    if destructive and not yes:
        from nsqcli.admin.confirm import stdin_is_terminal

        if not stdin_is_terminal():
            raise click.UsageError(
                f"{action} destroys messages and asks for confirmation on a terminal, but stdin "
                "is not one: add --yes (-y) to go ahead without asking",
                ctx=click.get_current_context(silent=True))
    plans: list[Plan] = []
    discovery_errors: list[str] = []

    async def discover(shutdown: Any) -> None:
        from nsqcli.admin.cluster import make_plan

        session = _session(settings, agent, console)
        try:
            for subject in subjects:
                if shutdown.requested:
                    break
                planned, errors = await make_plan(
                    session, action, subject, settings.nsqd_http_addresses,
                    settings.lookupd_http_addresses, all_nodes)
                plans.append(planned)
                for line in errors:
                    if line not in discovery_errors:
                        console.error(line)
                        discovery_errors.append(line)
        finally:
            session.close()

    status = run_to_status(discover, console)
    if status != ExitStatus.SUCCESS:
        exit_with(status)
    if dry_run:
        _print(console, [line for planned in plans for line in dry_run_lines(planned)])
        exit_with(ExitStatus.ERROR if discovery_errors else ExitStatus.SUCCESS)
    acting = [planned for planned in plans if planned.acting_steps]
    if destructive and not yes and acting:
        _confirm(acting, console, action)
    failed = bool(discovery_errors)

    async def act(shutdown: Any) -> ExitStatus:
        from nsqcli.admin.cluster import execute

        nonlocal failed
        session = _session(settings, agent, console)
        try:
            for planned in plans:
                if shutdown.requested:  # SIGINT/SIGTERM: what was asked has answered
                    break
                outcomes = await execute(session, planned)
                _print(console, [o.line for o in outcomes if o.result in (DONE, ABSENT)])
                for outcome in outcomes:
                    if outcome.result == KEPT:  # the consequence of a failure named above
                        console.warning(outcome.line)
                    elif outcome.result not in (DONE, ABSENT):
                        console.error(outcome.line)
                judged = verdict(planned, outcomes)
                for line in judged.errors:
                    console.error(line)
                for line in judged.notes:
                    console.notice(line)
                failed = failed or judged.failed
        finally:
            session.close()
        return ExitStatus.ERROR if failed else ExitStatus.SUCCESS

    exit_with(run_to_status(act, console))


def _confirm(plans: list[Plan], console: Console, action: str) -> None:
    from nsqcli.admin.confirm import ask

    try:
        confirmed = ask(confirmation(plans), console.err)
    except KeyboardInterrupt:
        console.err.write("\n")
        exit_with(ExitStatus.INTERRUPTED)
    if not confirmed:
        done = "deleted" if action == DELETE else "emptied"
        console.error(f"not confirmed: nothing was {done}")
        exit_with(ExitStatus.ERROR)


def run_list(topic: str | None, settings: HttpSettings, console: Console, agent: str) -> NoReturn:
    """``topic list`` (``topic`` None) or ``channel list --topic``: one name per line."""
    async def main(shutdown: Any) -> ExitStatus:
        from nsqcli.admin.cluster import list_names

        session = _session(settings, agent, console)
        try:
            names, errors = await list_names(session, settings.nsqd_http_addresses,
                                             settings.lookupd_http_addresses, topic)
        finally:
            session.close()
        for line in errors:
            console.error(line)
        _print(console, names)
        return ExitStatus.ERROR if errors else ExitStatus.SUCCESS

    exit_with(run_to_status(main, console))
