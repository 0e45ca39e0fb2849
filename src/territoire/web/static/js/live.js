/* Live updates for signed-in pages.
 *
 * Opens the server-sent event stream (`data-live-url` on <body>) and re-dispatches each
 * change on `document` as a DOM event, so that any page script can react without knowing
 * about the stream:
 *   "territoire:alarm"      detail = {event, id, url, severity, status, active, message, entity_urn, ...}
 *   "territoire:work-order" detail = {event, id, url, title, status, from_status, to_status, ...}
 * Regions marked `data-live-refresh="alarm"` (or "work-order", or both separated by a
 * space) receive the htmx event "live-refresh", on which their hx-trigger reloads them.
 * New alarms are announced politely in the #live-announcer live region.
 * The browser reconnects by itself, sending Last-Event-ID so that nothing is missed.
 */
(function () {
  "use strict";

  var body = document.body;
  var url = body && body.dataset.liveUrl;
  if (!url || !window.EventSource) {
    return;
  }

  var source = new EventSource(url);
  var announcer = document.getElementById("live-announcer");

  function announce(text) {
    if (!announcer) {
      return;
    }
    // Emptying first makes screen readers read a repeated message again.
    announcer.textContent = "";
    window.setTimeout(function () {
      announcer.textContent = text;
    }, 50);
  }

  function refreshRegions(kind) {
    if (!window.htmx) {
      return;
    }
    var regions = document.querySelectorAll("[data-live-refresh]");
    Array.prototype.forEach.call(regions, function (region) {
      var kinds = region.dataset.liveRefresh.split(" ");
      if (kinds.indexOf(kind) !== -1) {
        window.htmx.trigger(region, "live-refresh");
      }
    });
  }

  function relay(kind) {
    source.addEventListener(kind, function (message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      document.dispatchEvent(new CustomEvent("territoire:" + kind, { detail: data }));
      refreshRegions(kind);
      if (kind === "alarm" && data.event === "raised" && data.top_level) {
        announce(body.dataset.liveNewAlarm + " " + data.message);
      }
    });
  }

  relay("alarm");
  relay("work-order");

  source.addEventListener("open", function () {
    body.dataset.liveState = "open";
  });
  source.addEventListener("error", function () {
    body.dataset.liveState = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
  });
  // The session ended (signed out elsewhere): stop, the next navigation asks to sign in.
  source.addEventListener("signed-out", function () {
    source.close();
    body.dataset.liveState = "closed";
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
