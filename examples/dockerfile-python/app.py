"""A minimal Flask app that shipway runs from its Dockerfile's image."""

import os

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> dict[str, str | None]:
    release = os.environ.get("SHIPWAY_RELEASE")
    return {"message": "Hello from a Dockerfile on shipway", "release": release}
