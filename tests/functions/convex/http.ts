import { httpActionGeneric as httpAction, httpRouter, makeFunctionReference } from "convex/server";

const CORS = {
  "Access-Control-Allow-Origin": "https://app.example",
  "Access-Control-Allow-Methods": "POST, OPTIONS",
  "Vary": "Origin",
};

const http = httpRouter();

http.route({
  path: "/postMessage",
  method: "POST",
  handler: httpAction(async (ctx, request) => {
    const { text } = await request.json();
    console.log("posting", text);
    await ctx.runMutation(makeFunctionReference<"mutation">("counter:addNote"), { text });
    return new Response(JSON.stringify({ saved: text }), {
      status: 201,
      headers: { "Content-Type": "application/json", ...CORS },
    });
  }),
});

http.route({
  path: "/postMessage",
  method: "OPTIONS",
  handler: httpAction(async () => new Response(null, { status: 204, headers: CORS })),
});

http.route({
  pathPrefix: "/files/",
  method: "GET",
  handler: httpAction(async (_ctx, request) => {
    const url = new URL(request.url);
    return new Response(`file ${url.pathname.slice("/files/".length)} q=${url.searchParams.get("q")}`, {
      headers: { "Content-Type": "text/plain", "Set-Cookie": "seen=1" },
    });
  }),
});

http.route({
  path: "/url",
  method: "POST",
  handler: httpAction(async (_ctx, request) => Response.json({ url: request.url, body: await request.text() })),
});

http.route({
  path: "/env",
  method: "GET",
  handler: httpAction(async () => Response.json({
    cloud: process.env.CONVEX_CLOUD_URL ?? null,
    site: process.env.CONVEX_SITE_URL ?? null,
  })),
});

http.route({
  path: "/whoami",
  method: "GET",
  handler: httpAction(async (ctx) => Response.json(await ctx.auth.getUserIdentity())),
});

http.route({
  path: "/fail",
  method: "GET",
  handler: httpAction(async () => {
    throw new Error("handler broke");
  }),
});

export default http;
