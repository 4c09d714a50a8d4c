// Copy the pinned front-end packages from node_modules into static/vendor.
// Run after `npm ci`: `npm run vendor`. The copies are committed, so the
// server needs neither npm nor a network at run time (air-gapped control rooms).
const fs = require("fs");
const path = require("path");
const root = path.join(__dirname, "..");
const files = [
  ["node_modules/socket.io-client/dist/socket.io.min.js", "static/vendor/socket.io.min.js"],
  ["node_modules/uplot/dist/uPlot.iife.min.js", "static/vendor/uPlot.iife.min.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "static/vendor/uPlot.min.css"],
  ["node_modules/swagger-ui-dist/swagger-ui-bundle.js", "static/vendor/swagger-ui-bundle.js"],
  ["node_modules/swagger-ui-dist/swagger-ui.css", "static/vendor/swagger-ui.css"],
  // The network map: graph rendering, zoom/pan and layout on a canvas.
  ["node_modules/cytoscape/dist/cytoscape.min.js", "static/vendor/cytoscape.min.js"],
  // Accessibility checks, used only by the browser tests (injected by Playwright).
  ["node_modules/axe-core/axe.min.js", "tests/e2e/vendor/axe.min.js"],
];
for (const [from, to] of files) {
  fs.mkdirSync(path.dirname(path.join(root, to)), { recursive: true });
  fs.copyFileSync(path.join(root, from), path.join(root, to));
  console.log(`${from} -> ${to}`);
}
