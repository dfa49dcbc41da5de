// A minimal Express app for shipway.
const express = require("express");

const app = express();
app.get("/", (_req, res) => res.json({ message: "Hello from Node on shipway", release: process.env.SHIPWAY_RELEASE }));
app.listen(process.env.PORT || 3000, () => console.log(`listening on ${process.env.PORT || 3000}`));
