// A minimal Express app for shipway; `npm run build` (build.js) makes the pages in dist/.
const path = require("path");
const express = require("express");

const app = express();
app.get("/", (_req, res) => res.json({ message: "Hello from Node on shipway", release: process.env.SHIPWAY_RELEASE }));
app.use(express.static(path.join(__dirname, "dist")));
app.listen(process.env.PORT || 3000, () => console.log(`listening on ${process.env.PORT || 3000}`));
