// The build step: shipway runs `npm run build` once the dependencies are installed, and what
// it writes (dist/) is part of the release the app serves.
const fs = require("fs");
const path = require("path");

const out = path.join(__dirname, "dist");
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(
  path.join(out, "about.html"),
  "<!doctype html>\n<title>About</title>\n<h1>Built by npm run build on shipway</h1>\n",
);
console.log("built dist/about.html");
