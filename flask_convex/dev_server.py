"""The Flask dev server that ``flask convex dev`` runs: ``flask run`` tied to its parent's life.

``flask convex dev`` holds the write end of a pipe whose read end this process
(and the server process Werkzeug's reloader starts, which inherits it) watches:
when the parent exits in any way, SIGKILL included, the pipe closes and the
dev server stops instead of keeping its port. Linux's ``PR_SET_PDEATHSIG``
would cover one generation only, and the reloader adds a second.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from flask.cli import main as flask_main

from flask_convex.cli import LIFELINE_ENV


def _stop_at_end_of_file(fd: int) -> None:
    while os.read(fd, 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    """Runs `flask`, stopping when the lifeline (if any) closes."""
    fd = os.environ.get(LIFELINE_ENV)
    if fd is not None:
        threading.Thread(target=_stop_at_end_of_file, args=(int(fd),), daemon=True).start()
    # The local deployment already prints every function's log lines in this
    # terminal; without a handler of their own, warnings would print twice
    # through logging's last-resort handler. Handlers the app adds still get them.
    logging.getLogger("flask_convex.functions").addHandler(logging.NullHandler())
    flask_main()


if __name__ == "__main__":
    main()
