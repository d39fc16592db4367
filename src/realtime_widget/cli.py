"""The ``realtime-widget`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realtime-widget", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run the bundled Realtime-compatible server (no key, no internet)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument(
        "--api-key",
        default=None,
        help="the only standard key accepted; required when binding a non-loopback address "
        "(it shows in ps: prefer --api-key-file or $REALTIME_WIDGET_SERVER_KEY)",
    )
    serve.add_argument("--api-key-file", default=None, help="read the key from this file")
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to use the server (the notebook server's, e.g. "
        "https://hub.example.org); loopback origins always are; repeat for more",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes behind one front, one per core (default 1; a process holds a "
        "room of about 40 talking calls)",
    )
    # A worker behind the front: its ids carry this mark so the front can route them.
    serve.add_argument("--id-mark", default="", help=argparse.SUPPRESS)
    demo = commands.add_parser(
        "demo",
        help="open the quickstart notebook in JupyterLab (the local server unless "
        "OPENAI_API_KEY is set)",
    )
    demo.add_argument("--port", type=int, default=8888, help="JupyterLab's port (default 8888)")
    demo.add_argument("--no-browser", action="store_true", help="don't open a browser tab")
    demo.add_argument(
        "--dir", default=None, help="where to put the notebooks (default ~/realtime-widget-demo)"
    )
    broker = commands.add_parser(
        "broker",
        help="run the workshop key broker (a JupyterHub managed service: c.JupyterHub.services)",
    )
    broker.add_argument("--policy", default=None, help="the policy file (JSON: models, quotas)")
    broker.add_argument(
        "--upstream",
        default=None,
        help="'openai' (default) or a base URL, e.g. a shared local server's for offline work",
    )
    broker.add_argument(
        "--api-key-file", default=None, help="the instructor's key (else $OPENAI_API_KEY)"
    )
    broker.add_argument("--db", default=None, help="the SQLite ledger (default in the cwd)")
    workshop = commands.add_parser(
        "workshop",
        help="try a workshop here: a local JupyterHub with the broker and learner accounts "
        "(OpenAI with OPENAI_API_KEY, else the local server)",
    )
    workshop.add_argument("--learners", type=int, default=3, help="how many accounts (default 3)")
    workshop.add_argument(
        "--dir", default=None, help="the hub's state (default ~/realtime-widget-workshop)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            from .local import serve
        except ImportError as exc:
            sys.exit(
                f"The local server needs the 'local' extra: pip install 'realtime-widget[local]' "
                f"({exc})"
            )
        try:
            from .local.server import server_key

            key = server_key(args.api_key, args.api_key_file)
            if args.workers != 1:
                from .local.front import serve_workers

                serve_workers(
                    args.workers, args.host, args.port, key, allowed_origins=args.allow_origin
                )
                return
            if args.id_mark:
                from .local.engine.state import mark_ids

                mark_ids(args.id_mark)
            serve(host=args.host, port=args.port, api_key=key, allowed_origins=args.allow_origin)
        except (ValueError, OSError) as exc:  # an exposed server without a key, a missing file
            sys.exit(str(exc))
        except KeyboardInterrupt:
            pass
    elif args.command == "broker":
        from .broker.service import run
        from .config import ConfigError

        try:
            run(
                policy_path=args.policy,
                upstream=args.upstream,
                api_key_file=args.api_key_file,
                db=args.db,
            )
        except (ConfigError, ValueError, OSError) as exc:
            sys.exit(str(exc))
    elif args.command == "workshop":
        from .broker.workshop import run_workshop

        sys.exit(run_workshop(args.dir, learners=args.learners))
    elif args.command == "demo":
        from .demo import run_demo

        sys.exit(run_demo(port=args.port, open_browser=not args.no_browser, directory=args.dir))


if __name__ == "__main__":
    main()
