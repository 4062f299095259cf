"""The example's accounts: a few demo users with hashed passwords, and logging in and out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from flask import Blueprint, Flask, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from flask_convex import csrf_protect

DEMO_PASSWORDS: Final = {"alice": "wonderland", "bob": "builder"}
"""The demo accounts, shown on the login page: these are not secrets."""


@dataclass(frozen=True, eq=False)
class User(UserMixin):  # type: ignore[misc]  # flask-login has no type hints
    """A user; `id` is the subject of their Convex identity."""

    id: str
    password_hash: str

    @property
    def name(self) -> str:
        """The name shown in the page header and sent to Convex as the `name` claim."""
        return self.id.capitalize()


class UserStore:
    """Finds users by id and checks their passwords."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._users = {
            name: User(name, generate_password_hash(password))
            for name, password in passwords.items()
        }
        # Checked for unknown names too, so a login takes as long whether the name exists or not.
        self._decoy = generate_password_hash("")

    def get(self, user_id: str) -> User | None:
        """The user with this id, for flask-login's user loader."""
        return self._users.get(user_id)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is theirs, else None."""
        user = self._users.get(name.strip().lower())
        valid = check_password_hash(user.password_hash if user else self._decoy, password)
        return user if user and valid else None


store: Final = UserStore(DEMO_PASSWORDS)
"""The app's users."""

accounts = Blueprint("accounts", __name__)


def init_app(app: Flask) -> None:
    """Set up flask-login with the store and serve the login and logout views."""
    login_manager = LoginManager(app)
    login_manager.user_loader(store.get)
    login_manager.login_view = "accounts.login"
    app.register_blueprint(accounts)


@accounts.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Log in with a demo account; the form carries the CSRF token, as server actions do."""
    if request.method == "GET":
        return render_template("login.html", demo=DEMO_PASSWORDS)
    csrf_protect()
    name = request.form.get("name", "")
    user = store.authenticate(name, request.form.get("password", ""))
    if user is None:
        error = "That name and password do not match an account."
        return render_template("login.html", demo=DEMO_PASSWORDS, name=name, error=error), 401
    login_user(user)
    return redirect("/", 303)


@accounts.post("/logout")
def logout() -> ResponseReturnValue:
    """Log out; a POST with the CSRF token, so no other site can log a user out."""
    csrf_protect()
    logout_user()
    return redirect("/", 303)
