"""A minimal Flask app for shipway: `git push` it and open the URL it prints."""

import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(message="Hello from Flask on shipway", release=os.environ.get("SHIPWAY_RELEASE"))


@app.get("/healthz")
def health():
    return "ok"
