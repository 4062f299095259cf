"""`current` finds what Flask's and flask-login's proxies stand for, and fails where they do."""

from __future__ import annotations

import flask
import flask_login
import pytest
from flask_login import UserMixin

from flask_convex import current


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def make_app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "test"
    users = flask_login.LoginManager(app)
    users.user_loader(User)
    return app


def test_each_is_the_object_its_proxy_stands_for() -> None:
    app = make_app()
    with app.test_request_context("/page?x=1"):
        flask.g.mark = "this request"
        assert current.app() is app
        assert current.request() is flask.request._get_current_object()  # type: ignore[attr-defined]
        assert current.request().args["x"] == "1"
        assert current.session() is flask.session._get_current_object()  # type: ignore[attr-defined]
        assert current.g().mark == "this request"
        assert not current.user().is_authenticated
        flask_login.login_user(User("ada"))
        assert current.user().get_id() == "ada"


def test_each_request_gets_its_own() -> None:
    app = make_app()
    with app.test_request_context("/first"):
        first = current.request()
        with app.test_request_context("/second"):
            assert current.request().path == "/second"
        assert current.request() is first


def test_outside_a_context_each_fails_as_its_proxy_does() -> None:
    with pytest.raises(RuntimeError, match="outside of application context"):
        current.app()
    with pytest.raises(RuntimeError, match="outside of application context"):
        current.g()
    with pytest.raises(RuntimeError, match="outside of request context"):
        current.request()
    with pytest.raises(RuntimeError, match="outside of request context"):
        current.session()
    # flask-login's proxy stands for None outside a request.
    assert current.user() is None
