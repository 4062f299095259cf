"""flask-convex: Convex's server-rendering helpers (`convex/nextjs`) for Flask and HTMX."""

from convex import ConvexInt64

from .__about__ import __version__
from .errors import (
    ConvexAuthError,
    ConvexConfigError,
    ConvexConnectionError,
    ConvexError,
    ConvexFlaskError,
    ConvexFunctionError,
    ConvexRequestError,
    ConvexValueError,
)
from .extension import Convex
from .fetch import (
    afetch_action,
    afetch_mutation,
    afetch_query,
    fetch_action,
    fetch_mutation,
    fetch_query,
)
from .functions import FunctionReference, api
from .preload import (
    Preloaded,
    apreloaded_query_result,
    preload_query,
    preloaded_query_result,
)

__all__ = [
    "Convex",
    "ConvexAuthError",
    "ConvexConfigError",
    "ConvexConnectionError",
    "ConvexError",
    "ConvexFlaskError",
    "ConvexFunctionError",
    "ConvexInt64",
    "ConvexRequestError",
    "ConvexValueError",
    "FunctionReference",
    "Preloaded",
    "__version__",
    "afetch_action",
    "afetch_mutation",
    "afetch_query",
    "api",
    "apreloaded_query_result",
    "fetch_action",
    "fetch_mutation",
    "fetch_query",
    "preload_query",
    "preloaded_query_result",
]
