"""``python -m flask_convex.local``: run a local Convex deployment until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from flask_convex.local import (
    DEFAULT_PORT,
    LocalDeployment,
    LocalDeploymentError,
    PortInUseError,
    parse_env_pairs,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flask_convex.local",
        description="Serve a convex/ directory as a local Convex deployment.",
    )
    parser.add_argument("--functions", required=True, help="the app's convex/ directory")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", help="data file kept across restarts (default: in memory)")
    parser.add_argument("--watch", action="store_true", help="rebuild when a file changes")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="process.env for functions; repeatable",
    )
    parser.add_argument(
        "--admin-key",
        default=os.environ.get("FLASK_CONVEX_ADMIN_KEY"),
        help="accept `Authorization: Convex <key>` as admin (default: $FLASK_CONVEX_ADMIN_KEY, "
        "which keeps the key out of the process list)",
    )
    options = parser.parse_args(argv)
    try:
        env = parse_env_pairs(options.env)
    except ValueError as error:
        parser.error(f"argument --env: {error}")

    deployment = LocalDeployment(
        options.functions,
        port=options.port,
        host=options.host,
        data_file=options.data,
        watch=options.watch,
        env=env,
        admin_key=options.admin_key,
        echo=True,
    )

    def shut_down(signum: int, frame: FrameType | None) -> None:
        deployment.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, shut_down)
    try:
        url = deployment.start()
    except PortInUseError as error:
        print(f"error: {error}: choose another with --port (0 picks a free one)", file=sys.stderr)
        return 1
    except LocalDeploymentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(url, flush=True)
    try:
        status = deployment.wait()
    except KeyboardInterrupt:
        deployment.stop()
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
