"""A minimal FastAPI app for shipway."""

import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, str | None]:
    return {"message": "Hello from FastAPI on shipway", "release": os.environ.get("SHIPWAY_RELEASE")}
