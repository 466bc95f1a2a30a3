"""`shipyard simulate`: realistic traffic through a running server, with feedback. The traffic and
its driver are `_traffic.py`, loaded when the command runs."""

import typer

from shipyard.cli._app import app, console, handle_errors


@app.command()
@handle_errors
def simulate(
    agent: str = typer.Option("support", "--agent", help="The agent to call."),
    rps: float = typer.Option(5.0, "--rps", help="Requests per second."),
    duration: float = typer.Option(30.0, "--duration", help="Seconds to run."),
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="The server (loopback only)."),
    users: int = typer.Option(200, "--users", help="Distinct users the sessions come from."),
    feedback_rate: float = typer.Option(0.3, "--feedback-rate", help="Share of answers rated (0-1)."),
    concurrency: int = typer.Option(32, "--concurrency", help="Most requests in flight."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="SHIPYARD_API_KEY", help="Key with invoke role."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed for a repeatable mix."),
) -> None:
    """Drive realistic traffic through a running server.

    Many users, multi-turn sessions, a mix of request kinds, a share of
    thumbs and score feedback; prints a live summary every second.

    Example: shipyard simulate --agent support --rps 20 --duration 60 --url http://127.0.0.1:8000
    """
    import asyncio

    from shipyard.cli._traffic import Tally, drive, no_success

    def show(t: Tally) -> None:
        console.print(t.line(), highlight=False)

    tally = asyncio.run(
        drive(
            url,
            agent,
            rps=rps,
            duration_s=duration,
            users=users,
            feedback_rate=feedback_rate,
            concurrency=concurrency,
            api_key=api_key,
            seed=seed,
            on_tick=show,
        )
    )
    if tally.ok == 0:
        raise no_success(tally, url, agent, api_key=api_key)
