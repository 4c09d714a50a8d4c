// Service worker: keeps the dashboard's shell (page, scripts, styles) so a
// reload while the server is unreachable still opens the page, which then
// shows its last saved snapshot, marked stale. Network first, cache as fallback.
const CACHE = "bhs-shell-v2";
const SHELL = ["/", "/static/css/dashboard.css", "/static/js/app.js", "/static/js/state.js",
  "/static/js/format.js", "/static/js/map.js", "/static/js/panels.js", "/static/js/controls.js",
  "/static/js/alarms.js", "/static/js/chart.js", "/static/js/consequence.js",
  "/static/vendor/socket.io.min.js", "/static/vendor/uPlot.iife.min.js", "/static/vendor/uPlot.min.css",
  "/static/vendor/cytoscape.min.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  // Drop the shells of older versions.
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return;   // API calls and Socket.IO go straight to the network
  event.respondWith(
    fetch(event.request)
      .then((reply) => {
        const copy = reply.clone();
        caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        return reply;
      })
      .catch(() => caches.match(event.request)));
});
