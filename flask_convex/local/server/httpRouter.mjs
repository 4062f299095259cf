// The app's `convex/http.ts` router looked up as the backend does: for the
// site handler (httpActions.mjs) and for convex-test's `fetch` (runtime.mjs).

/**
 * `router` (the default export of http.ts) whose handlers see `request.url`
 * on `origin`, the site origin the request came to, as on the backend, instead
 * of the made-up `https://some.convex.site` convex-test's `fetch` builds.
 */
export function routedAt(router, origin) {
  return {
    isRouter: true,
    lookup(pathname, method) {
      const found = router.lookup(pathname, method);
      if (!found) return found;
      const [func, ...route] = found;
      const handler = func._handler ?? func;
      const atOrigin = (ctx, request) => {
        const { pathname: target, search } = new URL(request.url);
        // Concatenated, not resolved: a path like `//host/x` must stay a path.
        return handler(ctx, new Request(`${origin}${target}${search}`, request));
      };
      return [{ _handler: atOrigin }, ...route];
    },
  };
}

/** The route of `router` (the default export of http.ts) for a request, as `"METHOD /path"`, or null. */
export function routeOf(router, pathname, method) {
  // HEAD runs the GET route with the body stripped, as the backend does.
  const routed = method === "HEAD" ? "GET" : method;
  const found = router?.isRouter ? router.lookup(pathname, routed) : null;
  return found ? `${routed} ${found[2]}` : null;
}
