// A minimal Express app that shipway runs from its Dockerfile's image; it listens on $PORT.
const express = require("express");

const app = express();
app.get("/", (_req, res) =>
  res.json({ message: "Hello from a Dockerfile on shipway", release: process.env.SHIPWAY_RELEASE }),
);
const port = process.env.PORT || 3000;
app.listen(port, () => console.log(`listening on ${port}`));
