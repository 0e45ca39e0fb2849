/* Territoire maps: the territory overview (/map) and an asset's location (detail page).
 *
 * Everything is configured by data- attributes on the map element, so the pages need no
 * inline script. Features are drawn on one canvas (preferCanvas) and fetched for the
 * current viewport. Without a tile server the commune boundaries and the streets of the
 * registry are the background, so the map stays usable offline.
 *
 * The territory map (StateMap) reads /map/state: entities coloured by state, as points
 * or, when too many are in view, as clusters counted by the server. The asset page's
 * small map (FeatureMap) reads GeoJSON from /map/features.
 *
 * For tests and tools, the map element exposes:
 *   data-state="loading|ready|error", data-rendered-features="<n>" (assets represented),
 *   data-loads="<n>", data-bbox="<the box last asked for>", data-mode="points|cells",
 *   data-first-drawn-ms="<ms since navigation start when the first markers were drawn>"
 *   (also a performance mark "territoire:first-markers").
 * Live updates: a "territoire:alarm" event on document re-reads the view's states.
 */
(function () {
  "use strict";

  var LINES = { LineString: true, MultiLineString: true };
  var AREAS = { Polygon: true, MultiPolygon: true };
  var numberFormat = new Intl.NumberFormat(document.documentElement.lang || "fr");

  function attr(el, name) {
    return el.getAttribute("data-" + name) || "";
  }

  function getJson(url, signal) {
    return fetch(url, {
      headers: { Accept: "application/geo+json, application/json" },
      credentials: "same-origin",
      signal: signal
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    });
  }

  function addBackground(map, el) {
    var url = attr(el, "tile-url");
    if (url) {
      // Tiles that fail to load leave the plain background: nothing else depends on them.
      L.tileLayer(url, { attribution: attr(el, "tile-attribution"), maxZoom: 19 }).addTo(map);
    }
  }

  function textNode(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    node.textContent = text;
    return node;
  }

  function popupContent(properties, openLabel) {
    var box = textNode("div", "feature-popup", "");
    box.appendChild(textNode("p", "popup-name", properties.name || ""));
    box.appendChild(textNode("p", "popup-type", properties.typeLabel || properties.type || ""));
    if (properties.url && openLabel) {
      var link = textNode("a", "popup-link", openLabel);
      link.href = properties.url;
      box.appendChild(link);
    }
    return box;
  }

  function clampedBbox(bounds) {
    var west = Math.max(-180, bounds.getWest());
    var south = Math.max(-90, bounds.getSouth());
    var east = Math.min(180, bounds.getEast());
    var north = Math.min(90, bounds.getNorth());
    return [west, south, east, north].map(function (v) { return v.toFixed(6); }).join(",");
  }

  function checkedValues(form, name) {
    var values = [];
    form.querySelectorAll("input[name=" + name + "]:checked").forEach(function (box) {
      values.push(box.value);
    });
    return values;
  }

  function sayIn(status, message) {
    if (status) {
      status.textContent = message;
    }
  }

  // Either map: draw the tenant's communes, then let the map choose its first view.
  function showCommunes(owner) {
    getJson(attr(owner.el, "communes-url")).then(function (data) {
      owner.placeView(drawCommunes(owner.map, data));
    }).catch(function () {
      owner.placeView(null);
    });
  }

  function drawCommunes(map, data) {
    var layer = L.geoJSON(data, {
      interactive: false,
      style: function () {
        return {
          color: "#12406e", weight: 2, dashArray: "6 4",
          fillColor: "#ffffff", fillOpacity: 0.6
        };
      },
      onEachFeature: function (feature, sublayer) {
        // Names sit near the northern edge, away from the town centres and their assets.
        var bounds = sublayer.getBounds();
        var north = bounds.getNorth() - (bounds.getNorth() - bounds.getSouth()) * 0.08;
        var name = (feature.properties && feature.properties.name) || "";
        L.tooltip({ permanent: true, direction: "center", className: "commune-label" })
          .setLatLng([north, bounds.getCenter().lng])
          .setContent(textNode("span", "", name))
          .addTo(map);
      }
    });
    layer.addTo(map);
    return layer;
  }

  function FeatureMap(el) {
    this.el = el;
    this.openLabel = attr(el, "msg-open");
    this.status = document.getElementById("map-status");
    this.listLink = document.getElementById("map-list-link");
    this.layerForm = document.getElementById("map-layers");
    this.colours = {};
    this.loads = 0;
    this.controller = null;
    this.focus = el.hasAttribute("data-focus") ? JSON.parse(attr(el, "focus")) : null;
    this.map = L.map(el, { preferCanvas: true, zoomSnap: 0.5 });
    this.renderer = L.canvas({ padding: 0.3 });
    this.drawn = L.layerGroup().addTo(this.map);
    addBackground(this.map, el);
    this.readLayerChoices();
  }

  FeatureMap.prototype.readLayerChoices = function () {
    var self = this;
    if (!this.layerForm) {
      return;
    }
    this.layerForm.querySelectorAll("input[name=layer]").forEach(function (box) {
      self.colours[box.value] = box.getAttribute("data-colour");
      box.addEventListener("change", function () { self.load(); });
    });
    this.layerForm.querySelectorAll(".swatch").forEach(function (swatch) {
      swatch.style.backgroundColor = swatch.getAttribute("data-colour");
    });
    this.layerForm.addEventListener("submit", function (event) { event.preventDefault(); });
  };

  FeatureMap.prototype.checkedLayers = function () {
    if (!this.layerForm) {
      // No choice offered: the layers named by the page, else every layer.
      var named = attr(this.el, "layers");
      return named ? named.split(",") : null;
    }
    return checkedValues(this.layerForm, "layer");
  };

  FeatureMap.prototype.say = function (message) {
    sayIn(this.status, message);
  };

  FeatureMap.prototype.start = function () {
    var self = this;
    this.map.on("moveend", function () { self.load(); });
    showCommunes(this);
  };

  FeatureMap.prototype.placeView = function (communes) {
    if (this.focus) {
      var shape = L.geoJSON(this.focus);
      if (this.focus.type === "Point") {
        var c = this.focus.coordinates;
        this.map.setView([c[1], c[0]], 17);
      } else {
        this.map.fitBounds(shape.getBounds(), { maxZoom: 18, padding: [20, 20] });
      }
    } else if (communes && communes.getLayers().length) {
      this.map.fitBounds(communes.getBounds(), { padding: [10, 10] });
    } else {
      this.map.setView([46.6, 2.4], 6); // metropolitan France, until data says otherwise
    }
  };

  FeatureMap.prototype.load = function () {
    var self = this;
    var keys = this.checkedLayers();
    var bbox = clampedBbox(this.map.getBounds().pad(0.1));
    if (this.listLink) {
      this.listLink.href = "/entities?bbox=" + encodeURIComponent(clampedBbox(this.map.getBounds()));
    }
    if (this.controller) {
      this.controller.abort();
    }
    if (keys !== null && keys.length === 0) {
      this.draw({ features: [], layers: {} });
      return;
    }
    this.controller = new AbortController();
    this.el.setAttribute("data-state", "loading");
    this.el.setAttribute("data-bbox", bbox);
    this.say(attr(this.el, "msg-loading"));
    var url = attr(this.el, "features-url") + "?bbox=" + encodeURIComponent(bbox);
    if (keys !== null) {
      url += "&layers=" + encodeURIComponent(keys.join(","));
    }
    getJson(url, this.controller.signal).then(function (data) {
      self.draw(data);
    }).catch(function (error) {
      if (error.name === "AbortError") {
        return;
      }
      self.el.setAttribute("data-state", "error");
      self.say(attr(self.el, "msg-error"));
    });
  };

  FeatureMap.prototype.styleOf = function (feature) {
    var colour = feature.properties.colour || this.colours[feature.properties.layer] || "#4a4a4a";
    if (LINES[feature.geometry.type]) {
      return { renderer: this.renderer, color: colour, weight: 4, opacity: 0.85 };
    }
    if (AREAS[feature.geometry.type]) {
      return { renderer: this.renderer, color: colour, weight: 2, fillOpacity: 0.25 };
    }
    var zoom = this.map.getZoom();
    return {
      renderer: this.renderer, radius: zoom >= 16 ? 7 : zoom >= 14 ? 5 : 4,
      color: "#ffffff", weight: 1,
      fillColor: colour, fillOpacity: 0.95
    };
  };

  FeatureMap.prototype.draw = function (data) {
    var self = this;
    var features = (data.features || []).filter(function (f) { return f.geometry; });
    // Lines first, so that the points on them stay on top and clickable.
    var lines = features.filter(function (f) { return !(f.geometry.type in { Point: 1, MultiPoint: 1 }); });
    var points = features.filter(function (f) { return f.geometry.type in { Point: 1, MultiPoint: 1 }; });
    this.drawn.clearLayers();
    var options = {
      style: function (feature) { return self.styleOf(feature); },
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, self.styleOf(feature));
      },
      onEachFeature: function (feature, layer) {
        layer.bindPopup(popupContent(feature.properties || {}, self.openLabel));
      }
    };
    L.geoJSON(lines, options).addTo(this.drawn);
    L.geoJSON(points, options).addTo(this.drawn);
    if (this.focus) {
      L.geoJSON(this.focus, {
        style: function () { return { color: "#a4262c", weight: 6 }; },
        pointToLayer: function (feature, latlng) {
          return L.circleMarker(latlng, {
            renderer: self.renderer, radius: 10, color: "#a4262c", weight: 4, fillOpacity: 0
          });
        },
        interactive: false
      }).addTo(this.drawn);
    }
    this.report(data.layers || {}, features.length);
  };

  FeatureMap.prototype.report = function (layers, drawn) {
    var truncated = false;
    Object.keys(layers).forEach(function (key) {
      var summary = layers[key];
      truncated = truncated || summary.total > summary.count;
    });
    if (this.layerForm) {
      this.layerForm.querySelectorAll("[data-layer-count]").forEach(function (node) {
        var summary = layers[node.getAttribute("data-layer-count")];
        node.textContent = summary ? numberFormat.format(summary.count) : "";
      });
    }
    var message = attr(this.el, "msg-loaded").replace("{count}", numberFormat.format(drawn));
    if (truncated) {
      message += " " + attr(this.el, "msg-truncated");
    }
    this.say(message);
    this.loads += 1;
    this.el.setAttribute("data-rendered-features", String(drawn));
    this.el.setAttribute("data-loads", String(this.loads));
    this.el.setAttribute("data-state", "ready");
  };

  /* --- the territory map: states, points and clusters ------------------------------- */

  var ALARM_STATE = 2; // states from this index on are alarms (warning and worse)
  var LIVE_DELAY_MS = 800;

  function parsedAttr(el, name, fallback) {
    try {
      return JSON.parse(attr(el, name));
    } catch (error) {
      return fallback;
    }
  }

  function StateMap(el) {
    this.el = el;
    this.form = document.getElementById("map-layers");
    this.status = document.getElementById("map-status");
    this.listLink = document.getElementById("map-list-link");
    this.panel = document.getElementById("entity-panel");
    this.stateColours = parsedAttr(el, "state-colours", []);
    this.stateLabels = parsedAttr(el, "state-labels", []);
    this.colours = {};
    this.loads = 0;
    this.controller = null;
    this.liveTimer = null;
    this.map = L.map(el, { preferCanvas: true, zoomSnap: 0.5 });
    this.renderer = L.canvas({ padding: 0.3 });
    this.drawn = L.layerGroup().addTo(this.map);
    addBackground(this.map, el);
    this.readChoices();
    this.setUpSearch();
    this.setUpPanel();
  }

  StateMap.prototype.readChoices = function () {
    var self = this;
    if (!this.form) {
      return;
    }
    this.form.querySelectorAll("input[name=layer]").forEach(function (box) {
      self.colours[box.value] = box.getAttribute("data-colour");
    });
    this.form.querySelectorAll(".swatch").forEach(function (swatch) {
      swatch.style.backgroundColor = swatch.getAttribute("data-colour");
    });
    this.form.querySelectorAll("input, select").forEach(function (field) {
      field.addEventListener("change", function () { self.load(); });
    });
    this.form.addEventListener("submit", function (event) { event.preventDefault(); });
  };

  StateMap.prototype.checked = function (name) {
    return this.form ? checkedValues(this.form, name) : [];
  };

  StateMap.prototype.say = function (message) {
    sayIn(this.status, message);
  };

  StateMap.prototype.start = function () {
    var self = this;
    this.map.on("moveend", function () { self.load(); });
    // Live updates (live.js) announce alarm changes: re-read the states of this view,
    // once for a burst of changes.
    document.addEventListener("territoire:alarm", function () {
      window.clearTimeout(self.liveTimer);
      self.liveTimer = window.setTimeout(function () { self.load(); }, LIVE_DELAY_MS);
    });
    showCommunes(this);
  };

  StateMap.prototype.placeView = function (communes) {
    if (communes && communes.getLayers().length) {
      this.map.fitBounds(communes.getBounds(), { padding: [10, 10] });
    } else {
      this.map.setView([46.6, 2.4], 6); // metropolitan France, until data says otherwise
    }
  };

  StateMap.prototype.url = function (bbox, layers) {
    var params = new URLSearchParams();
    params.set("bbox", bbox);
    params.set("zoom", String(Math.round(this.map.getZoom())));
    params.set("layers", layers.join(","));
    var states = this.checked("state");
    var allStates = this.form ? this.form.querySelectorAll("input[name=state]").length : 0;
    if (states.length && states.length < allStates) {
      params.set("state", states.join(","));
    }
    var commune = this.form && this.form.querySelector("select[name=commune]");
    if (commune && commune.value) {
      params.set("commune", commune.value);
    }
    return attr(this.el, "state-url") + "?" + params.toString();
  };

  StateMap.prototype.load = function () {
    var self = this;
    var layers = this.checked("layer");
    var states = this.checked("state");
    var bbox = clampedBbox(this.map.getBounds().pad(0.1));
    if (this.listLink) {
      this.listLink.href = "/entities?bbox=" + encodeURIComponent(clampedBbox(this.map.getBounds()));
    }
    if (this.controller) {
      this.controller.abort();
    }
    if (layers.length === 0 || (this.form && states.length === 0)) {
      this.draw({ mode: "points", points: [], types: [], counts: {}, total: 0 });
      return;
    }
    this.controller = new AbortController();
    this.el.setAttribute("data-state", "loading");
    this.el.setAttribute("data-bbox", bbox);
    this.say(attr(this.el, "msg-loading"));
    getJson(this.url(bbox, layers), this.controller.signal).then(function (data) {
      self.draw(data);
    }).catch(function (error) {
      if (error.name === "AbortError") {
        return;
      }
      self.el.setAttribute("data-state", "error");
      self.say(attr(self.el, "msg-error"));
    });
  };

  StateMap.prototype.draw = function (data) {
    this.drawn.clearLayers();
    if (data.mode === "cells") {
      this.drawCells(data.cells || []);
    } else {
      this.drawPoints(data.points || [], data.types || []);
    }
    this.report(data);
  };

  StateMap.prototype.pointStyle = function (state, layerColour) {
    var zoom = this.map.getZoom();
    var radius = zoom >= 16 ? 7 : zoom >= 14 ? 5 : 4;
    if (state >= ALARM_STATE) {
      return {
        renderer: this.renderer, radius: radius + 3, color: "#1a1a1a", weight: 2,
        fillColor: this.stateColours[state], fillOpacity: 1
      };
    }
    if (state === 1) {
      return {
        renderer: this.renderer, radius: radius, color: layerColour, weight: 2,
        fillColor: this.stateColours[1], fillOpacity: 0.9
      };
    }
    return {
      renderer: this.renderer, radius: radius, color: "#ffffff", weight: 1,
      fillColor: layerColour, fillOpacity: 0.95
    };
  };

  StateMap.prototype.drawPoints = function (points, types) {
    var self = this;
    var lines = [];
    var dots = [];
    points.forEach(function (p) {
      (p.length > 6 && !(p[6].type in { Point: 1, MultiPoint: 1 }) ? lines : dots).push(p);
    });
    // Lines first, then points from the calmest to the worst state: alarms stay on top.
    dots.sort(function (a, b) { return a[5] - b[5]; });
    lines.forEach(function (p) {
      var type = types[p[2]] || [];
      var colour = p[5] >= 1 ? self.stateColours[p[5]] : (self.colours[type[1]] || "#555555");
      var shape = L.geoJSON(p[6], {
        style: function () {
          return { renderer: self.renderer, color: colour, weight: 4, opacity: 0.85, fillOpacity: 0.25 };
        }
      });
      self.bindEntity(shape, p, type);
      shape.addTo(self.drawn);
    });
    dots.forEach(function (p) {
      var type = types[p[2]] || [];
      var marker = L.circleMarker([p[4], p[3]], self.pointStyle(p[5], self.colours[type[1]] || "#4a4a4a"));
      self.bindEntity(marker, p, type);
      marker.addTo(self.drawn);
    });
  };

  StateMap.prototype.bindEntity = function (layer, p, type) {
    var self = this;
    var label = (p[1] || p[0]) + " — " + (type[2] || type[0] || "");
    if (p[5] > 0) {
      label += " — " + (this.stateLabels[p[5]] || "");
    }
    layer.bindTooltip(textNode("span", "", label), { direction: "top", sticky: true });
    layer.on("click", function () { self.openPanel(p[0]); });
  };

  StateMap.prototype.drawCells = function (cells) {
    var self = this;
    var template = attr(this.el, "msg-cluster");
    cells.forEach(function (c) {
      var size = Math.round(Math.min(44, 24 + 5 * Math.log10(c[2])));
      var badge = textNode("span", "cluster-count", numberFormat.format(c[2]));
      badge.style.backgroundColor = self.stateColours[c[3]] || "#12406e";
      badge.style.width = size + "px";
      badge.style.height = size + "px";
      badge.style.lineHeight = size + "px";
      if (c[3] >= ALARM_STATE) {
        badge.className += " cluster-alarm";
      }
      var marker = L.marker([c[1], c[0]], {
        icon: L.divIcon({ html: badge, className: "cluster", iconSize: [size, size] }),
        keyboard: false,
        title: template.replace("{count}", numberFormat.format(c[2]))
          .replace("{flagged}", numberFormat.format(c[4]))
      });
      marker.on("click", function () {
        self.map.setView([c[1], c[0]], Math.min(self.map.getZoom() + 2, 19));
      });
      marker.addTo(self.drawn);
    });
  };

  StateMap.prototype.report = function (data) {
    var counts = data.counts || {};
    if (this.form) {
      this.form.querySelectorAll("[data-layer-count]").forEach(function (node) {
        var n = counts[node.getAttribute("data-layer-count")];
        node.textContent = n ? numberFormat.format(n) : "";
      });
    }
    var total = data.total || 0;
    var message = attr(this.el, "msg-loaded").replace("{count}", numberFormat.format(total));
    if (data.mode === "cells") {
      message += " " + attr(this.el, "msg-clustered");
    }
    this.say(message);
    this.loads += 1;
    if (!this.el.hasAttribute("data-first-drawn-ms") && total > 0) {
      if (window.performance && performance.mark) {
        performance.mark("territoire:first-markers");
      }
      this.el.setAttribute("data-first-drawn-ms", String(Math.round(performance.now())));
    }
    this.el.setAttribute("data-mode", data.mode || "points");
    this.el.setAttribute("data-rendered-features", String(total));
    this.el.setAttribute("data-loads", String(this.loads));
    this.el.setAttribute("data-state", "ready");
  };

  /* Side panel: an htmx fragment of the asset, charts drawn by chart.js. */

  StateMap.prototype.setUpPanel = function () {
    var self = this;
    if (!this.panel) {
      return;
    }
    this.panel.addEventListener("click", function (event) {
      if (event.target.closest(".entity-panel-close")) {
        self.closePanel();
      }
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !self.panel.hidden) {
        self.closePanel();
      }
    });
    this.panel.addEventListener("htmx:afterSwap", function () {
      self.panel.hidden = false;
      self.map.invalidateSize();
      var title = document.getElementById("entity-panel-title");
      if (title) {
        title.focus();
      }
    });
  };

  StateMap.prototype.openPanel = function (urn) {
    if (!this.panel || !window.htmx) {
      window.location.href = "/entities/" + encodeURIComponent(urn);
      return;
    }
    this.el.setAttribute("data-panel", urn);
    window.htmx.ajax("GET", "/entities/" + encodeURIComponent(urn) + "/panel", {
      target: "#entity-panel", swap: "innerHTML"
    });
  };

  StateMap.prototype.closePanel = function () {
    this.panel.hidden = true;
    this.panel.textContent = "";
    this.el.removeAttribute("data-panel");
    this.map.invalidateSize();
    this.el.focus();
  };

  /* Search: assets by name, then the address typed. */

  StateMap.prototype.setUpSearch = function () {
    var self = this;
    var form = document.getElementById("map-search");
    if (!form) {
      return;
    }
    var results = document.getElementById("map-search-results");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = form.querySelector("input[name=q]").value.trim();
      results.textContent = "";
      if (!text) {
        return;
      }
      getJson(attr(self.el, "search-url") + "?q=" + encodeURIComponent(text)).then(function (data) {
        self.showResults(results, data.results || []);
      }).catch(function () {
        results.appendChild(textNode("li", "", attr(self.el, "msg-error")));
      });
    });
  };

  StateMap.prototype.showResults = function (list, found) {
    var self = this;
    if (!found.length) {
      list.appendChild(textNode("li", "", list.getAttribute("data-msg-none")));
      return;
    }
    found.forEach(function (result) {
      var item = document.createElement("li");
      var label = result.kind === "address"
        ? list.getAttribute("data-msg-address") + " : " + result.label
        : result.label;
      var button = textNode("button", "link-button", label);
      button.type = "button";
      button.addEventListener("click", function () { self.goTo(result); });
      item.appendChild(button);
      list.appendChild(item);
    });
  };

  StateMap.prototype.goTo = function (result) {
    var box = result.bbox || [];
    if (box.length === 4) {
      if (box[0] === box[2] && box[1] === box[3]) {
        this.map.setView([box[1], box[0]], 18);
      } else {
        this.map.fitBounds([[box[1], box[0]], [box[3], box[2]]], { maxZoom: 18 });
      }
    }
    if (result.kind === "entity") {
      this.openPanel(result.urn);
    }
  };

  function start() {
    document.querySelectorAll("#entity-map").forEach(function (el) {
      new FeatureMap(el).start();
    });
    document.querySelectorAll("#territory-map").forEach(function (el) {
      new StateMap(el).start();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
