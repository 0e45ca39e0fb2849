/* Territoire maps: the territory overview (/map) and an asset's location (detail page).
 *
 * Everything is configured by data- attributes on the map element, so the pages need no
 * inline script. Features are drawn on one canvas (preferCanvas) and fetched for the
 * current viewport. Without a tile server the commune boundaries and the streets of the
 * registry are the background, so the map stays usable offline.
 *
 * For tests and tools, the map element exposes:
 *   data-state="loading|ready|error", data-rendered-features="<n>", data-loads="<n>",
 *   data-bbox="<the box last asked for>".
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

  function TerritoryMap(el) {
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

  TerritoryMap.prototype.readLayerChoices = function () {
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

  TerritoryMap.prototype.checkedLayers = function () {
    if (!this.layerForm) {
      // No choice offered: the layers named by the page, else every layer.
      var named = attr(this.el, "layers");
      return named ? named.split(",") : null;
    }
    var keys = [];
    this.layerForm.querySelectorAll("input[name=layer]:checked").forEach(function (box) {
      keys.push(box.value);
    });
    return keys;
  };

  TerritoryMap.prototype.say = function (message) {
    if (this.status) {
      this.status.textContent = message;
    }
  };

  TerritoryMap.prototype.start = function () {
    var self = this;
    this.map.on("moveend", function () { self.load(); });
    getJson(attr(this.el, "communes-url")).then(function (data) {
      var communes = drawCommunes(self.map, data);
      self.placeView(communes);
    }).catch(function () {
      self.placeView(null);
    });
  };

  TerritoryMap.prototype.placeView = function (communes) {
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

  TerritoryMap.prototype.load = function () {
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

  TerritoryMap.prototype.styleOf = function (feature) {
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

  TerritoryMap.prototype.draw = function (data) {
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

  TerritoryMap.prototype.report = function (layers, drawn) {
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

  function start() {
    document.querySelectorAll("#territory-map, #entity-map").forEach(function (el) {
      new TerritoryMap(el).start();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
