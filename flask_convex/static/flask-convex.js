/* flask-convex: keeps live fragments current and wires htmx to server actions.
 *
 * - Push (when the script has data-convex-url): one official ConvexClient per
 *   page subscribes to each distinct query and arguments of the page's live
 *   fragments (re-scanned after every swap). A pushed value is only a change
 *   signal: when its digest differs from the fragment's data-convex-hash, one
 *   POST to <data-render-url> re-renders every changed fragment and the answer's
 *   out-of-band swaps apply. The socket authenticates with a JWT from
 *   <data-token-url>, kept in memory, only on pages rendered with a token; it
 *   turns anonymous when a re-render or the tab becoming visible finds the
 *   user logged out.
 * - Polling: POST <data-poll-url> every <data-poll-interval> ms with every live
 *   fragment's id, signed reference and hash (204: nothing changed). With push
 *   it runs only while the socket has been down for FALLBACK_MS, each poll
 *   nudging a new connection. When neither works fragments get
 *   `data-convex-stale` and the delay doubles (up to 30 s, or the interval).
 * - A swap never takes a fragment back in time: one rendered at an older Convex
 *   timestamp (data-convex-ts) than the fragment shown is dropped.
 * - Refreshes wait while the tab is hidden.
 * - <html data-convex-connection> says how the page keeps current: push,
 *   connecting (socket down, not yet FALLBACK_MS) or poll.
 * - Sends the CSRF token as X-CSRF-Token with every htmx request, and the page's
 *   live fragments as the `_convex_live` field of every htmx POST, so
 *   a server action can answer with the fragments it changed.
 * - Marks a paginated list busy (aria-busy, data-convex-status="LoadingMore")
 *   while its load-more request runs; htmx disables the button meanwhile.
 * - Lets server-action error answers swap: the re-rendered form (X-Convex-Action:
 *   form) in place, an error fragment (X-Convex-Action: error) into
 *   #convex-errors, made at the end of <body> if the page has none.
 */
(function (global) {
  "use strict";

  /* The digest live.value_digest computes in Python: SHA-256 of the value's
   * Convex-encoded JSON written as Python's json.dumps(sort_keys=True,
   * separators=(",", ":")) writes it, first 24 hex digits. */

  function pythonFloat(number) {
    // Python's repr: shortest digits (as JS), fixed notation for exponents -4..15.
    var parts = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(number));
    var sign = parts[1];
    var digits = parts[2] + (parts[3] || "");
    var point = parts[2].length + Number(parts[4] || 0);
    var leading = /^0*/.exec(digits)[0].length;
    digits = digits.slice(leading).replace(/0+$/, "");
    point -= leading;
    if (digits === "") {
      return sign + "0.0";
    }
    var exponent = point - 1;
    if (exponent >= -4 && exponent < 16) {
      if (point <= 0) {
        return sign + "0." + "0".repeat(-point) + digits;
      }
      if (point >= digits.length) {
        return sign + digits + "0".repeat(point - digits.length) + ".0";
      }
      return sign + digits.slice(0, point) + "." + digits.slice(point);
    }
    var mantissa = digits[0] + (digits.length > 1 ? "." + digits.slice(1) : "");
    var magnitude = Math.abs(exponent);
    return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (magnitude < 10 ? "0" : "") + magnitude;
  }

  function pythonString(text) {
    // json.dumps escapes everything outside printable ASCII, as UTF-16 code units.
    return JSON.stringify(text).replace(/[\u007f-\uffff]/g, function (c) {
      return "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");
    });
  }

  function canonicalJson(value) {
    if (value === null) {
      return "null";
    }
    if (typeof value === "boolean") {
      return value ? "true" : "false";
    }
    if (typeof value === "number") {
      return pythonFloat(value);
    }
    if (typeof value === "string") {
      return pythonString(value);
    }
    if (Array.isArray(value)) {
      return "[" + value.map(canonicalJson).join(",") + "]";
    }
    return (
      "{" +
      // Field names are ASCII, so code unit order is Python's code point order.
      Object.keys(value)
        .sort()
        .map(function (key) {
          return pythonString(key) + ":" + canonicalJson(value[key]);
        })
        .join(",") +
      "}"
    );
  }

  function digest(encoded) {
    var bytes = new TextEncoder().encode(canonicalJson(encoded));
    return global.crypto.subtle.digest("SHA-256", bytes).then(function (hash) {
      return Array.prototype.map
        .call(new Uint8Array(hash).slice(0, 12), function (byte) {
          return byte.toString(16).padStart(2, "0");
        })
        .join("");
    });
  }

  global.flaskConvex = { canonicalJson: canonicalJson, digest: digest };

  if (typeof document === "undefined") {
    return;
  }

  var FALLBACK_MS = 3000;
  var script = document.currentScript;
  var pollUrl = script.getAttribute("data-poll-url");
  var interval = Number(script.getAttribute("data-poll-interval")) || 2000;
  var csrfMeta = document.querySelector('meta[name="convex-csrf-token"]');
  // A script tag written by hand may still carry the token itself.
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : script.getAttribute("data-csrf-token");
  var convexUrl = script.getAttribute("data-convex-url");
  var renderUrl = script.getAttribute("data-render-url");
  var tokenUrl = script.getAttribute("data-token-url");
  var authenticated = script.hasAttribute("data-convex-auth");
  // Push needs the Convex client and SubtleCrypto (https, or localhost).
  var push = Boolean(convexUrl && global.convex && global.crypto && global.crypto.subtle);
  var maxDelay = Math.max(30000, interval);
  var delay = interval;
  var timer = null;
  var inFlight = false;
  var stale = false;
  var polling = !push;

  function liveElements() {
    return document.querySelectorAll("[data-convex-ref]");
  }

  function fragmentOf(el) {
    return {
      id: el.id,
      ref: el.getAttribute("data-convex-ref"),
      hash: el.getAttribute("data-convex-hash") || "",
    };
  }

  function pageFragments() {
    return Array.prototype.map.call(liveElements(), fragmentOf);
  }

  function markStale(value) {
    if (stale === value) {
      return;
    }
    stale = value;
    liveElements().forEach(function (el) {
      if (stale) {
        el.setAttribute("data-convex-stale", "");
      } else {
        el.removeAttribute("data-convex-stale");
      }
    });
    document.dispatchEvent(new CustomEvent(value ? "convex:stale" : "convex:fresh"));
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify(body),
    });
  }

  /* Applies a poll or render answer; resolves true when Flask and Convex answered. */
  function apply(response) {
    if (response.status === 204) {
      return Promise.resolve(true);
    }
    if (response.status === 200 || response.status === 400) {
      return response.text().then(function (html) {
        htmx.swap(document.body, html, { swapStyle: "none" });
        return true;
      });
    }
    return Promise.resolve(false);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = polling ? setTimeout(poll, ms) : null;
  }

  function poll() {
    if (document.hidden || inFlight || !polling) {
      return;
    }
    if (push) {
      nudge();
    }
    var fragments = pageFragments();
    if (fragments.length === 0) {
      schedule(delay);
      return;
    }
    inFlight = true;
    post(pollUrl, { fragments: fragments })
      .then(apply)
      // Also when handling the answer failed: otherwise inFlight stays set and polling stops.
      .catch(function () {
        return false;
      })
      .then(function (ok) {
        inFlight = false;
        markStale(!ok);
        delay = ok ? interval : Math.min(delay * 2, maxDelay);
        schedule(delay);
      });
  }

  function setPolling(value) {
    if (polling !== value) {
      polling = value;
      delay = interval;
      schedule(0);
    }
    showConnection();
  }

  /* <html data-convex-connection="push|connecting|poll">: how the page keeps current. */
  function showConnection() {
    var state = polling ? "poll" : connected ? "push" : "connecting";
    document.documentElement.setAttribute("data-convex-connection", state);
  }

  /* ---- push ---- */

  var client = null;
  var connected = false;
  var downTimer = null;
  // "query\0args" -> {key, query, args, unsubscribe, digest, pushes, version, asked}:
  // `version` counts the pushes digested, `asked` the version last sent to re-render.
  var subscriptions = new Map();
  var rendering = false;
  var renderDelay = interval;
  var renderTimer = null;

  function keyOf(el) {
    var query = el.getAttribute("data-convex-query");
    return query ? query + "\0" + el.getAttribute("data-convex-args") : null;
  }

  function fetchToken(options) {
    return post(tokenUrl, { force: Boolean(options && options.forceRefreshToken) })
      .then(function (response) {
        return response.ok ? response.json() : { token: null };
      })
      .then(function (answer) {
        return answer.token || null;
      });
  }

  function subscribe(key, subscription) {
    subscription.unsubscribe = client.onUpdate(
      subscription.query,
      subscription.args,
      function (value) {
        // Digests resolve asynchronously: only the latest push's counts.
        var pushes = ++subscription.pushes;
        digest(convex.convexToJson(value)).then(function (shown) {
          if (pushes === subscription.pushes) {
            pushed(subscription, shown);
          }
        });
      },
      function () {
        subscription.pushes += 1;
        pushed(subscription, "!error");
      }
    );
  }

  function pushed(subscription, shown) {
    if (subscriptions.get(subscription.key) !== subscription) {
      return;
    }
    subscription.digest = shown;
    subscription.version += 1;
    requestRender();
  }

  /* Opens a client (again: a new one connects at once, where the old one backs off). */
  function connect() {
    if (client) {
      client.close();
    }
    connected = false;
    client = new convex.ConvexClient(convexUrl, { unsavedChangesWarning: false });
    if (authenticated) {
      client.setAuth(fetchToken);
    }
    client.subscribeToConnectionState(function (state) {
      setConnected(state.isWebSocketConnected);
    });
    subscriptions.forEach(function (subscription, key) {
      subscribe(key, subscription);
    });
    setConnected(false);
  }

  function nudge() {
    if (!connected) {
      connect();
    }
  }

  function setConnected(value) {
    // The client reports every change of its state; only the socket going up or down counts.
    if (value === connected && (value || downTimer !== null || polling)) {
      return;
    }
    connected = value;
    clearTimeout(downTimer);
    downTimer = null;
    if (value) {
      setPolling(false);
      markStale(false);
    } else if (!polling) {
      downTimer = setTimeout(function () {
        downTimer = null;
        setPolling(true);
      }, FALLBACK_MS);
    }
    showConnection();
  }

  /* Subscribes to the queries of the fragments on the page, and only those. */
  function rescan() {
    if (!push) {
      return;
    }
    var present = new Set();
    liveElements().forEach(function (el) {
      var key = keyOf(el);
      if (!key) {
        return;
      }
      present.add(key);
      if (subscriptions.has(key)) {
        return;
      }
      var subscription = {
        key: key,
        query: el.getAttribute("data-convex-query"),
        args: convex.jsonToConvex(JSON.parse(el.getAttribute("data-convex-args"))),
        digest: null,
        pushes: 0,
        version: 0,
        asked: 0,
      };
      subscriptions.set(key, subscription);
      subscribe(key, subscription);
    });
    subscriptions.forEach(function (subscription, key) {
      if (!present.has(key)) {
        subscriptions.delete(key);
        subscription.unsubscribe();
      }
    });
  }

  /* The fragments whose pushed value differs from what they show and not yet asked for. */
  function changedFragments() {
    var changed = [];
    liveElements().forEach(function (el) {
      var subscription = subscriptions.get(keyOf(el));
      if (
        subscription &&
        subscription.digest !== null &&
        subscription.version > subscription.asked &&
        subscription.digest !== el.getAttribute("data-convex-hash") &&
        !(subscription.digest === "!error" && el.classList.contains("convex-error"))
      ) {
        changed.push({ el: el, subscription: subscription });
      }
    });
    return changed;
  }

  function requestRender() {
    if (document.hidden || rendering) {
      return;
    }
    var changed = changedFragments();
    if (changed.length === 0) {
      return;
    }
    rendering = true;
    var asked = changed.map(function (item) {
      var before = item.subscription.asked;
      item.subscription.asked = item.subscription.version;
      return { subscription: item.subscription, before: before };
    });
    post(renderUrl, {
      fragments: changed.map(function (item) {
        return fragmentOf(item.el);
      }),
    })
      .then(function (response) {
        var signedIn = response.headers.get("X-Convex-Authenticated");
        if (signedIn !== null) {
          setAuthenticated(signedIn === "1");
        }
        return apply(response);
      })
      .catch(function () {
        return false;
      })
      .then(function (ok) {
        rendering = false;
        clearTimeout(renderTimer);
        if (ok) {
          renderDelay = interval;
          if (!polling) {
            markStale(false);
          }
          rescan();
          requestRender();
          return;
        }
        asked.forEach(function (item) {
          item.subscription.asked = item.before;
        });
        markStale(true);
        renderTimer = setTimeout(requestRender, renderDelay);
        renderDelay = Math.min(renderDelay * 2, maxDelay);
      });
  }

  /* After an htmx request's swaps (an action's answer), ask again where the push is newer. */
  function swapped() {
    if (!push) {
      return;
    }
    rescan();
    subscriptions.forEach(function (subscription) {
      subscription.asked = Math.min(subscription.asked, subscription.version - 1);
    });
    requestRender();
  }

  /* ---- htmx wiring ---- */

  function errorBox() {
    var box = document.getElementById("convex-errors");
    if (!box) {
      box = document.createElement("div");
      box.id = "convex-errors";
      box.setAttribute("role", "alert");
      document.body.appendChild(box);
    }
    return box;
  }

  function timestamp(el) {
    var ts = el && el.getAttribute && el.getAttribute("data-convex-ts");
    return ts ? BigInt(ts) : null;
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var detail = event.detail;
    var incoming = detail.fragment && detail.fragment.firstElementChild;
    var shown = timestamp(detail.target);
    var rendered = timestamp(incoming);
    if (shown !== null && rendered !== null && rendered < shown) {
      detail.shouldSwap = false;
    }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var detail = event.detail;
    detail.headers["X-CSRF-Token"] = csrfToken;
    // Server actions take POSTs; other verbs may carry parameters in the URL.
    if (detail.verb === "post") {
      var fragments = pageFragments();
      if (fragments.length > 0) {
        detail.parameters["_convex_live"] = JSON.stringify(fragments);
      }
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var kind = detail.xhr.getResponseHeader("X-Convex-Action");
    if (kind === "form") {
      detail.shouldSwap = true;
      // A refused input (422) is an expected answer, not an error to log.
      detail.isError = detail.xhr.status !== 422;
    } else if (kind === "error") {
      detail.shouldSwap = true;
      detail.target = errorBox();
      detail.swapOverride = "innerHTML";
    }
  });

  document.addEventListener("htmx:afterRequest", swapped);
  // Events of a replaced control no longer reach the document: the request's own
  // end does, after htmx has swapped its answer in.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.hasAttribute || !elt.hasAttribute("data-convex-more")) {
      return;
    }
    var control = elt.closest(".convex-more");
    var list = control.closest(".convex-paginated") || control;
    var status = control.getAttribute("data-convex-status");
    control.setAttribute("data-convex-status", "LoadingMore");
    list.setAttribute("aria-busy", "true");
    event.detail.xhr.addEventListener("loadend", function () {
      list.removeAttribute("aria-busy");
      if (control.isConnected) {
        control.setAttribute("data-convex-status", status);
      }
    });
  });

  /* The requester logged in or out since the page was rendered: reconnect as who they are now. */
  function setAuthenticated(value) {
    if (value !== authenticated) {
      authenticated = value;
      connect();
    }
  }

  /* Coming back to the tab, the socket drops its identity if the user logged out meanwhile. */
  function checkAuth() {
    if (!push || !authenticated) {
      return;
    }
    // Only an answer counts: a failed request says nothing about the session.
    post(tokenUrl, { force: false })
      .then(function (response) {
        if (!response.ok) {
          return;
        }
        return response.json().then(function (answer) {
          if (answer.token === null) {
            setAuthenticated(false);
          }
        });
      })
      .catch(function () {});
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      checkAuth();
      schedule(0);
      requestRender();
    }
  });

  function start() {
    if (push) {
      connect();
      rescan();
      return;
    }
    // A lazy fragment (no hash yet) is filled by a poll right away.
    var lazy = document.querySelector('[data-convex-ref][data-convex-hash=""]');
    schedule(lazy ? 0 : interval);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})(globalThis);
