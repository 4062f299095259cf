"""The quickstart's app: a live task list with a form, on Convex (docs/quickstart.rst)."""

from flask import Flask, render_template, request

from flask_convex import Convex, api, fetch_mutation, preload_query, revalidate, server_action

app = Flask(__name__)
# Signs live references and CSRF tokens. In production, set your own: FLASK_SECRET_KEY=...
app.config["SECRET_KEY"] = "dev"  # noqa: S105
app.config.from_prefixed_env()
convex = Convex(app)


@app.get("/")
def index() -> str:
    tasks = preload_query(api.tasks.list)
    return render_template("index.html", tasks=tasks)


@app.post("/tasks")
@server_action(form="partials/task_form.html")
def add_task() -> None:
    fetch_mutation(api.tasks.create, {"text": request.form.get("text", "")})
    revalidate(api.tasks.list)
