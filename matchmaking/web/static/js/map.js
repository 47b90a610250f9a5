// Search map: one marker per result (read from the list), my site, the radius. Tiles come from the
// configured server; without network the markers still show on a plain background.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") { return; }
  var lat = parseFloat(el.getAttribute("data-lat"));
  var lon = parseFloat(el.getAttribute("data-lon"));
  var map = L.map(el, { scrollWheelZoom: false });
  var tiles = el.getAttribute("data-tile-url");
  if (tiles) {
    L.tileLayer(tiles, { maxZoom: 18, attribution: el.getAttribute("data-attribution") || "" }).addTo(map);
  }
  function icon(kind) {
    return L.divIcon({ className: "", html: '<div class="map-marker ' + kind + '"></div>',
                       iconSize: [22, 22], iconAnchor: [4, 22], popupAnchor: [7, -20] });
  }
  var points = [];
  if (!isNaN(lat) && !isNaN(lon)) {
    points.push([lat, lon]);
    L.marker([lat, lon], { icon: L.divIcon({ className: "", html: '<div class="map-here"></div>', iconSize: [18, 18],
                                             iconAnchor: [9, 9] }),
                           title: el.getAttribute("data-here") || "", keyboard: false, zIndexOffset: 1000 })
      .bindTooltip(el.getAttribute("data-here") || "").addTo(map);
    var radius = parseFloat(el.getAttribute("data-radius-km"));
    if (radius > 0) {
      L.circle([lat, lon], { radius: radius * 1000, color: "#1f6f4a", weight: 1, fillOpacity: 0.04 }).addTo(map);
    }
  }
  document.querySelectorAll(".results-list > li[data-lat]").forEach(function (li) {
    var p = [parseFloat(li.getAttribute("data-lat")), parseFloat(li.getAttribute("data-lon"))];
    if (isNaN(p[0]) || isNaN(p[1])) { return; }
    points.push(p);
    var link = document.createElement("a");
    link.href = li.getAttribute("data-url");
    link.textContent = li.getAttribute("data-title");
    L.marker(p, { icon: icon(li.getAttribute("data-kind") || ""), title: li.getAttribute("data-title") })
      .bindPopup(link).addTo(map);
  });
  if (points.length > 1) {
    map.fitBounds(L.latLngBounds(points).pad(0.15), { maxZoom: 13 });
  } else if (points.length === 1) {
    map.setView(points[0], 11);
  } else {
    map.setView([48.43, -0.2], 10);
  }
  el.setAttribute("data-ready", String(points.length));
})();
