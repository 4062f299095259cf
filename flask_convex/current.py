"""The current app, request, session, `g` and flask-login user, each found in one step.

Each attribute read through one of Flask's proxies (`request.environ`) finds the
current object again through a few Python calls, about a microsecond each time,
and a page reads them dozens of times (a CSRF field per form). These are the
proxies' own `_get_current_object`, werkzeug's documented way to the object a
proxy stands for: call one, then read what it gives. Outside a context each
raises the RuntimeError its proxy would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

import flask
import flask_login

if TYPE_CHECKING:
    from flask.ctx import _AppCtxGlobals
    from flask.sessions import SessionMixin
    from werkzeug.local import LocalProxy

app: Final = cast("LocalProxy[flask.Flask]", flask.current_app)._get_current_object
request: Final = cast("LocalProxy[flask.Request]", flask.request)._get_current_object
session: Final = cast("LocalProxy[SessionMixin]", flask.session)._get_current_object
g: Final = cast("LocalProxy[_AppCtxGlobals]", flask.g)._get_current_object
user: Final = cast("LocalProxy[Any]", flask_login.current_user)._get_current_object
"""flask-login's `current_user`: the app must have a LoginManager."""
