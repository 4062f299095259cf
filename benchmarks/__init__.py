"""Scripts that print how flask-convex compares with baselines; run with python -m."""
