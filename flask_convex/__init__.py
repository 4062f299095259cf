"""flask-convex: Convex's server-rendering helpers (`convex/nextjs`) for Flask and HTMX."""

from convex import ConvexInt64

from .__about__ import __version__
from .actions import revalidate, revalidate_path, server_action
from .auth import TokenIssuer, current_issuer, jwks_data_uri
from .csrf import limit_body
from .csrf import protect as csrf_protect
from .errors import (
    ConvexAuthError,
    ConvexConfigError,
    ConvexConnectionError,
    ConvexError,
    ConvexFlaskError,
    ConvexFunctionError,
    ConvexOutcomeUnknownError,
    ConvexRequestError,
    ConvexValueError,
    LiveReferenceError,
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
from .functions import FunctionReference, NoArgs, api
from .paginated import PaginatedPreloaded, preload_paginated_query
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
    "ConvexOutcomeUnknownError",
    "ConvexRequestError",
    "ConvexValueError",
    "FunctionReference",
    "LiveReferenceError",
    "NoArgs",
    "PaginatedPreloaded",
    "Preloaded",
    "TokenIssuer",
    "__version__",
    "afetch_action",
    "afetch_mutation",
    "afetch_query",
    "api",
    "apreloaded_query_result",
    "csrf_protect",
    "current_issuer",
    "fetch_action",
    "fetch_mutation",
    "fetch_query",
    "jwks_data_uri",
    "limit_body",
    "preload_paginated_query",
    "preload_query",
    "preloaded_query_result",
    "revalidate",
    "revalidate_path",
    "server_action",
]
