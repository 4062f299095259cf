"""The flask-convex example: the Convex server-rendering page's four uses, ported to Flask."""
