// HTTP actions: the app's `convex/http.ts` router served at the deployment's
// site origin (the `.convex.site` URL of a cloud deployment), as Convex's own
// local backend does on the port after the API's.

import { RequestError } from "./errors.mjs";
import { readBody } from "./http.mjs";
import { routeOf } from "./httpRouter.mjs";

/** What the backend answers when no route of `http.ts` matches, word for word. */
const NO_ROUTE = "No matching routes found";

/** Returns the `(req, res)` handler that runs `runtime`'s HTTP actions. */
export function createSiteHandler(runtime, { maxBodyBytes }) {
  return async (req, res) => {
    try {
      const body = await readBody(req, maxBodyBytes);
      const auth = await runtime.auth.fromHeader(req.headers.authorization);
      const url = new URL(req.url, "http://site");
      const route = routeOf(runtime.httpRouter, url.pathname, req.method);
      if (route === null) {
        res.writeHead(404, { "content-type": "text/plain;charset=UTF-8" });
        res.end(NO_ROUTE);
        return;
      }
      const response = await runtime.runHttpAction(route, {
        target: url.pathname + url.search,
        method: req.method,
        headers: Object.entries(req.headersDistinct).flatMap(([name, values]) => values.map((value) => [name, value])),
        body: req.method === "GET" || req.method === "HEAD" || body.length === 0 ? undefined : body,
      }, auth);
      await send(res, response, req.method === "HEAD");
    } catch (error) {
      const known = error instanceof RequestError;
      if (!known) process.stderr.write(`flask-convex: internal error on ${req.method} ${req.url}: ${error.stack}\n`);
      res.writeHead(known ? error.status : 500, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: known ? error.code : "InternalServerError", message: String(error.message) }));
    }
  };
}

async function send(res, response, headOnly) {
  const headers = {};
  for (const [name, value] of response.headers) headers[name] = value;
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  res.writeHead(response.status, headers);
  if (headOnly || response.body === null) {
    res.end();
    return;
  }
  for await (const chunk of response.body) res.write(chunk);
  res.end();
}
