/* flask-convex: keeps live fragments current and wires htmx to server actions.
 *
 * - Polls POST <data-poll-url> every <data-poll-interval> ms with every live
 *   fragment's id, signed reference and hash; applies the out-of-band swaps of
 *   the answer (204: nothing changed). Paused while the tab is hidden. When the
 *   server or Convex cannot answer, fragments get `data-convex-stale` and the
 *   delay doubles (up to 30 s, or the interval if longer) until a poll succeeds.
 * - Sends the CSRF token as X-CSRF-Token with every htmx request, and the page's
 *   live fragments as the `_convex_live` field of every htmx POST, so
 *   a server action can answer with the fragments it changed.
 * - Marks a paginated list busy (aria-busy, data-convex-status="LoadingMore")
 *   while its load-more request runs; htmx disables the button meanwhile.
 * - Lets server-action error answers swap: the re-rendered form (X-Convex-Action:
 *   form) in place, an error fragment (X-Convex-Action: error) into
 *   #convex-errors, made at the end of <body> if the page has none.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var pollUrl = script.getAttribute("data-poll-url");
  var interval = Number(script.getAttribute("data-poll-interval")) || 2000;
  var csrfToken = script.getAttribute("data-csrf-token");
  var maxDelay = Math.max(30000, interval);
  var delay = interval;
  var timer = null;
  var inFlight = false;
  var stale = false;

  function liveElements() {
    return document.querySelectorAll("[data-convex-ref]");
  }

  function pageFragments() {
    return Array.prototype.map.call(liveElements(), function (el) {
      return {
        id: el.id,
        ref: el.getAttribute("data-convex-ref"),
        hash: el.getAttribute("data-convex-hash") || "",
      };
    });
  }

  function markStale(value) {
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

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function succeeded() {
    if (stale) {
      markStale(false);
    }
    delay = interval;
  }

  function failed() {
    markStale(true);
    delay = Math.min(delay * 2, maxDelay);
  }

  function poll() {
    if (document.hidden || inFlight) {
      return;
    }
    var fragments = pageFragments();
    if (fragments.length === 0) {
      schedule(delay);
      return;
    }
    inFlight = true;
    fetch(pollUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify({ fragments: fragments }),
    })
      .then(function (response) {
        if (response.status === 204) {
          return succeeded();
        }
        if (response.status === 200 || response.status === 400) {
          return response.text().then(function (html) {
            htmx.swap(document.body, html, { swapStyle: "none" });
            succeeded();
          });
        }
        failed();
      })
      // Also when handling the answer failed: otherwise inFlight stays set and polling stops.
      .catch(failed)
      .then(function () {
        inFlight = false;
        schedule(delay);
      });
  }

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

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      schedule(0);
    }
  });

  function start() {
    // A lazy fragment (no hash yet) is filled by a poll right away.
    var lazy = document.querySelector('[data-convex-ref][data-convex-hash=""]');
    schedule(lazy ? 0 : interval);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
