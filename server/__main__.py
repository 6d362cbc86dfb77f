"""The service's command line: `python -m server serve|migrate|revision|...` (also `coop`)."""

from __future__ import annotations

import argparse
import re
import sys

from coop.settings import get_settings

# A member's ballot requests (the API's, and the page where one votes and lands after voting):
# never in the access log, whose line would say from which address a ballot came and when
# (docs/agreement.md, "Nothing dates your ballot").
UNLOGGED_PATHS = re.compile(
    r"^/(?:v1/)?proposals/[^/?#]+/ballot(?:[?#]|$)"
    r"|^/proposals/[^/?#]+(?:[?#]|$)"
)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from coop.observability import configure_logging
    from dispatch.realtime.pauses import tune_gc
    from server.app import create_app
    from server.migrate import upgrade

    settings = get_settings()
    configure_logging(
        settings.log_level,
        settings.log_json,
        secrets=[settings.admin_token],
        unlogged_paths=UNLOGGED_PATHS,
    )
    upgrade(settings.database_url)
    app = create_app(settings)
    # After the imports, the app and the migrations: what exists now lives as long as the process.
    tune_gc(freeze=settings.gc_freeze, thresholds=settings.gc_thresholds)
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_transport_max_bytes,
        # The app itself reads X-Forwarded-For, from COOP_TRUSTED_PROXIES only.
        proxy_headers=False,
        log_config=None,
        lifespan="on",
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from server.migrate import upgrade

    upgrade(get_settings().database_url)
    print("database schema up to date")
    return 0


def _revision(args: argparse.Namespace) -> int:
    from server.migrate import revision

    try:
        path = revision(
            get_settings().database_url,
            args.domain,
            args.message,
            autogenerate=args.autogenerate,
            rev_id=args.rev_id,
        )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"wrote {path}: read it, keep only what belongs to {args.domain}, then test it")
    return 0


def _report(args: argparse.Namespace) -> int:
    """Writes one of the regulator's reports to stdout (its production is audited)."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from coop import jurisdiction
    from coop.db import create_engine, create_sessionmaker, utcnow
    from coop.errors import ProblemError
    from dispatch.trips import regulator

    settings = get_settings()
    kinds: dict[str, tuple[regulator.ReportKey, str]] = {
        "trips": ("trips_monthly", "month"),
        "adapted-requests": ("adapted_requests_quarterly", "quarter"),
        "municipalities": ("trips_by_municipality_yearly", "year"),
        "dues": ("dues_monthly", "month"),
    }
    report, period_name = kinds[args.report]
    period: str | None = getattr(args, period_name)
    if period is None:
        print(f"{args.report} needs --{period_name}", file=sys.stderr)
        return 2

    async def produce() -> regulator.Produced:
        engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
        try:
            async with create_sessionmaker(engine)() as session:
                return await regulator.produce(
                    session=session,
                    profile=jurisdiction.load(settings.jurisdiction),
                    report=report,
                    period=period,
                    output=args.format,
                    now=utcnow(),
                    municipalities=settings.municipalities,
                )
        finally:
            await engine.dispose()

    try:
        produced = asyncio.run(produce())
    except ProblemError as exc:
        print(exc.detail, file=sys.stderr)
        return 2
    except (OSError, SQLAlchemyError) as exc:
        print(f"cannot read the database: {type(exc).__name__}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(produced.body)
    return 0


def _verify_audit(args: argparse.Namespace) -> int:
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from coop.audit import describe, verify_database

    try:
        result = asyncio.run(verify_database(get_settings().database_url))
    except (OSError, SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"cannot read the audit log: {reason}", file=sys.stderr)
        return 2
    print(describe(result))
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply migrations, then run the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(handler=_serve)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=_migrate)
    new_revision = commands.add_parser(
        "revision", help="write a new migration into a domain's folder (docs/architecture.md)"
    )
    new_revision.add_argument(
        "domain", help="core, drivers, bargaining, reputation or dispatch: whose tables change"
    )
    new_revision.add_argument("message", help="what the migration does, a few words")
    new_revision.add_argument(
        "--autogenerate", action="store_true", help="compare the models with the database"
    )
    new_revision.add_argument("--rev-id", help="the revision id (default: a random one)")
    new_revision.set_defaults(handler=_revision)
    verify_audit = commands.add_parser("verify-audit", help="verify the audit log's hash chain")
    verify_audit.set_defaults(handler=_verify_audit)
    report = commands.add_parser(
        "report", help="write one of the regulator's reports to stdout (docs/jurisdiction.md)"
    )
    report.add_argument("report", choices=["trips", "adapted-requests", "municipalities", "dues"])
    report.add_argument("--month", help="YYYY-MM, for trips")
    report.add_argument("--quarter", help="YYYY-Qn, for adapted-requests")
    report.add_argument("--year", help="YYYY, for municipalities")
    report.add_argument("--format", choices=["csv", "json"], default="csv")
    report.set_defaults(handler=_report)
    from server.simulator.cli import add_commands as add_simulator_commands

    add_simulator_commands(commands)
    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
