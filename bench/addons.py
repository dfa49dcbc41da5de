"""Benchmark: add-ons as a team uses them, on examples/django.

- `shipway addons create postgres|redis --app APP` until the config var is set and the release
  with it is live (the command waits for that): the first of each kind, which also starts its
  server, then more of them with the servers running;
- a warm push of the Django app with one new migration in its release phase, from `git push`
  until the push reports the release live (it answers by then).
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

from flaskapp import cli, flask_on_shipway, spread, timed
from run import machine, table

EXTRA = 5
PUSHES = 7

MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notes", "{previous}")]
    operations = [migrations.RunSQL("CREATE TABLE bench_{n} (id serial PRIMARY KEY)")]
"""


def main() -> None:
    with flask_on_shipway("django") as bench:
        first_pg = cli("addons", "create", "postgres", "--app", "bench", bench=bench)
        first_redis = cli("addons", "create", "redis", "--app", "bench", bench=bench)
        bench.git("add", "-A")
        bench.git("commit", "-qm", "first")
        bench.push()  # the cold build: dependencies installed once, the first migrations run
        pg = [
            cli(
                "addons",
                "create",
                "postgres",
                "--app",
                "bench",
                "--name",
                f"pg-{n}",
                "--as",
                f"EXTRA_{n}_URL",
                bench=bench,
            )
            for n in range(EXTRA)
        ]
        redis = [
            cli(
                "addons",
                "create",
                "redis",
                "--app",
                "bench",
                "--name",
                f"cache-{n}",
                "--as",
                f"CACHE_{n}_URL",
                bench=bench,
            )
            for n in range(EXTRA)
        ]
        pushes = []
        previous = "0001_initial"
        for n in range(2, PUSHES + 2):
            name = f"{n:04d}_bench"
            (bench.repo / "notes" / "migrations" / f"{name}.py").write_text(
                MIGRATION.format(previous=previous, n=n)
            )
            previous = name
            bench.git("add", "-A")
            bench.git("commit", "-qm", f"migration {n}")
            pushes.append(
                timed("git", "push", "-q", bench.remote, "main", bench=bench, cwd=bench.repo)
            )
    rows = [
        (
            "`addons create postgres` → release live, the first (server initialised and started; "
            "nothing live yet, so no deploy)",
            f"{first_pg:.2f} s",
        ),
        (
            "`addons create redis` → release live, the first (nothing live yet, so no deploy)",
            f"{first_redis:.2f} s",
        ),
        (
            "`addons create postgres` → `DATABASE_URL`-style var set and the release live "
            "(target ≤ 3 s)",
            spread(pg),
        ),
        ("`addons create redis` → var set and the release live", spread(redis)),
        (
            "warm push of the Django app, one new migration in its release phase → live "
            "(target ≤ 3 s)",
            spread(pushes),
        ),
    ]
    table(
        "Add-ons and the release phase (examples/django)",
        f"{machine()}. A detached `shipway up` (SQLite store, embedded Temporal, NATS and "
        "PostgreSQL, Debian's redis-server), the Django example with Postgres and Redis "
        "add-ons; each timed command returns once its release is live. Redeploys start two "
        "gunicorn workers and wait for their health check.",
        rows,
    )


if __name__ == "__main__":
    main()
