"""`affectflow service`: the warm service that plain `affectflow run`s leave and use (flows/warm.py)."""

from __future__ import annotations

import argparse

COMMANDS = {"service": "the warm service (Prefect server + Dask worker with the models) that plain runs use"}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    service = subparsers.add_parser(
        "service",
        help=COMMANDS["service"],
        description=(
            "After a run that analysed videos, `affectflow run` leaves a warm service: a Prefect server "
            "and a Dask worker with the models loaded, so the next plain run on this machine reaches its "
            "first video in seconds. It leaves by itself after AFFECTFLOW_WARM_IDLE_S (600 s) unused; "
            "AFFECTFLOW_KEEP_WARM=off never leaves one. One service per environment: a run whose "
            "AFFECTFLOW_*/AWS_* variables, PATH or code differ does not use it."
        ),
    )
    action = service.add_subparsers(title="actions", metavar="ACTION", required=True)
    start = action.add_parser("start", help="start this environment's service now and wait until it is up")
    start.set_defaults(func=run_start)
    status = action.add_parser("status", help="the services running on this machine (exit 1: none)")
    status.set_defaults(func=run_status)
    stop = action.add_parser("stop", help="stop every service running on this machine")
    stop.set_defaults(func=run_stop)


def run_start(args: argparse.Namespace) -> int:
    from affectflow.flows import warm

    service = warm.find()
    if service is None:
        warm.start_in_background()  # or one is starting already: wait for it
        service = warm.wait_for()
        print(f"started: {service.describe()} (log {service.log})")
    else:
        print(f"already running: {service.describe()}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from affectflow.flows import warm

    mine = warm.fingerprint()
    services = list(warm.running())
    for service in services:
        whose = "this environment" if service.fingerprint == mine else "another environment"
        print(f"{service.describe()}, for {whose}, leaves after {service.idle_exit_s:g} s unused")
    if not services:
        print("no warm service runs")
    return 0 if services else 1


def run_stop(args: argparse.Namespace) -> int:
    from affectflow.flows import warm

    services = list(warm.running())
    for service in services:
        print(f"stopping {service.describe()}: {'stopped' if warm.stop(service) else 'still running after 30 s'}")
    if not services:
        print("no warm service runs")
    return 0
