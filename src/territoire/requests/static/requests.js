/* Residents' pages: choose the category's questions, place the problem on a map or by
 * the device's position, and suggest similar open requests nearby before sending.
 * Everything is driven by data- attributes (no inline script: strict CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function byId(id) { return document.getElementById(id); }

  function showCategory(form) {
    var chosen = form.querySelector("input[name=category]:checked");
    var extras = form.querySelectorAll(".category-extra");
    for (var i = 0; i < extras.length; i++) {
      var active = chosen && extras[i].getAttribute("data-category") === chosen.value;
      extras[i].classList.toggle("active", Boolean(active));
    }
  }

  function checkSimilar(form) {
    var chosen = form.querySelector("input[name=category]:checked");
    var lat = byId("lat").value, lon = byId("lon").value;
    var target = byId("similar-live");
    if (!chosen || !lat || !lon || !target) { return; }
    var url = form.getAttribute("data-similar-url") + "?" + new URLSearchParams({
      category: chosen.value, lat: lat, lon: lon
    }).toString();
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        target.innerHTML = html;
        // The resident has seen the suggestions: the server need not show them again.
        var confirm = form.querySelector("input[name=confirm_new]");
        if (!confirm) {
          confirm = document.createElement("input");
          confirm.type = "hidden";
          confirm.name = "confirm_new";
          form.appendChild(confirm);
        }
        confirm.value = "1";
      })
      .catch(function () { target.innerHTML = ""; });
  }

  function setPoint(form, map, state, lat, lon) {
    byId("lat").value = lat.toFixed(6);
    byId("lon").value = lon.toFixed(6);
    if (map && window.L) {
      if (state.marker) { state.marker.setLatLng([lat, lon]); }
      else { state.marker = L.circleMarker([lat, lon], { radius: 9, color: "#a4262c" }).addTo(map); }
    }
    checkSimilar(form);
  }

  function pickMap(form, state) {
    var el = byId("pick-map");
    if (!el || !window.L) { return null; }
    var map = L.map(el, { preferCanvas: true });
    var url = el.getAttribute("data-tile-url");
    if (url) { L.tileLayer(url, { attribution: el.getAttribute("data-tile-attribution") || "", maxZoom: 19 }).addTo(map); }
    var box = (el.getAttribute("data-bbox") || "").split(",").map(Number);
    if (box.length === 4 && box.every(isFinite)) { map.fitBounds([[box[1], box[0]], [box[3], box[2]]]); }
    else { map.setView([46.6, 2.4], 5); }
    map.on("click", function (event) { setPoint(form, map, state, event.latlng.lat, event.latlng.lng); });
    return map;
  }

  function reportForm() {
    var form = byId("report-form");
    if (!form) { return; }
    var state = {};
    var map = pickMap(form, state);
    showCategory(form);
    form.addEventListener("change", function (event) {
      if (event.target.name === "category") { showCategory(form); checkSimilar(form); }
    });
    var button = byId("use-position");
    if (button && navigator.geolocation) {
      button.addEventListener("click", function () {
        var status = byId("position-status");
        status.textContent = "…";
        navigator.geolocation.getCurrentPosition(function (position) {
          status.textContent = position.coords.latitude.toFixed(5) + ", " + position.coords.longitude.toFixed(5);
          setPoint(form, map, state, position.coords.latitude, position.coords.longitude);
          if (map) { map.setView([position.coords.latitude, position.coords.longitude], 17); }
        }, function () { status.textContent = "✗"; }, { enableHighAccuracy: true, timeout: 10000 });
      });
    }
  }

  function publicMap() {
    var el = byId("public-map");
    if (!el || !window.L) { return; }
    fetch(el.getAttribute("data-geojson"), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data.features.length) { return; }
        var map = L.map(el, { preferCanvas: true });
        var layer = L.geoJSON(data, {
          pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, { radius: 7 }); },
          onEachFeature: function (feature, sublayer) {
            var box = document.createElement("a");
            box.href = feature.properties.url;
            box.textContent = feature.properties.category + " — " + feature.properties.statusLabel;
            sublayer.bindPopup(box);
          }
        }).addTo(map);
        map.fitBounds(layer.getBounds(), { maxZoom: 16, padding: [20, 20] });
      })
      .catch(function () { el.textContent = ""; });
  }

  document.addEventListener("DOMContentLoaded", function () { reportForm(); publicMap(); });
})();
