"""Benchmark: one simulated day of a busy multi-tenant build service, on a fixed fleet and on
an autoscaled one.

    python bench/fleet_sim.py [SEED] [--trial]   (--trial: not recorded)

A discrete-event simulation in compressed time (a heap of events, no sleeping) that drives
shipway's own fleet policies:
- dispatch: each build's pool is `Rules.pool_for`, the rules read by `dispatch.parse`;
- affinity: a build goes first to `affinity.warm_builder`, given the BuilderRecords the
  registry would hold (put at each builder's heartbeat; a silent one turns lost after
  LOST_AFTER), and waits up to affinity.WAIT for a slot there, then joins its pool's queue;
- autoscaling: `sizing.Sizer`, the autoscaler's own, every TICK, for the policies under
  `pools:`.

The day: BUILDS pushes of APPS apps (Zipf push frequency; a plan, a region and sometimes a
need each) arriving as a non-homogeneous Poisson process, PEAK times the night's rate from
13:00 to 20:00; log-normal build times, WARM of that on the builder holding the app's cache.
Builders are lost at random, and come back as new builders after a random while; a lost
builder's builds go back to their pool's queue after the activity's heartbeat timeout, and
its caches are gone.

The day runs on the same builds autoscaled (starting from each pool's min), then on fixed
fleets sized for the day's average load at the policy's target and for the autoscaled peak.
Prints the figures and appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from run import machine, table

from shipway.fleet import affinity, dispatch, sizing
from shipway.fleet.lifecycle import BUILDERS, BuilderState
from shipway.fleet.registry import FORGET_AFTER, HEARTBEAT_EVERY, BuilderRecord

SEED = 20261123
DAY = 24 * 3600.0
#: Seconds after the day for the last builds to finish; what is left then is lost.
DRAIN_LIMIT = 12 * 3600.0

BUILDS = 150_000
APPS = 20_000
ZIPF = 0.8
PRO, EU, EU_REGISTRY = 0.10, 0.30, 0.02
#: The peak's rate over the night's, and the hours of the peak (a cosine ramp of RAMP hours
#: on either side).
PEAK, PEAK_HOURS, RAMP = 3.5, (13.0, 20.0), 1.5

#: Median cold build (s); spread of apps' medians and of one app's builds; the cap (s).
MEDIAN, APP_SIGMA, BUILD_SIGMA, CAP = 60.0, 0.8, 0.35, 900.0
#: A warm build's share of the cold time.
WARM = 0.35
#: Apps whose caches one builder keeps (least recently built dropped first).
CACHE_APPS = 300

#: The build activity's Temporal heartbeat_timeout (shipway/deploys/workflow.py).
HEARTBEAT_TIMEOUT = 10.0
#: Seconds between autoscaler runs, and from asking for a builder to its first poll.
TICK, STARTUP = 15.0, 20.0
#: Builders lost an hour; mean seconds until a lost builder's machine is back.
LOSSES_AN_HOUR, RESTART = 2.0, 300.0

FLEET = {
    "rules": [
        {"plan": "pro", "pool": "fast"},
        {"needs": "eu-registry", "pool": "eu"},
        {"region": "eu", "pool": "eu"},
    ],
    "pools": {
        "default": {"min": 2, "max": 60, "target": 0.7, "slots": 4, "idle_after": 300},
        "eu": {"min": 1, "max": 30, "target": 0.7, "slots": 4, "idle_after": 300},
        "fast": {"min": 1, "max": 15, "target": 0.7, "slots": 4, "idle_after": 300},
    },
}


@dataclass(frozen=True, slots=True)
class App:
    name: str
    plan: str
    region: str
    needs: tuple[str, ...]
    #: Its median cold build, in seconds.
    median: float


@dataclass(frozen=True, slots=True)
class Push:
    arrived: float
    app: App
    #: Seconds this build takes on a builder without the app's cache.
    cold: float


@dataclass(slots=True, eq=False)
class Build:
    id: int
    push: Push
    pool: str = ""
    #: When it joined the queue it is in.
    queued_at: float = 0.0
    started: float | None = None
    run_started: float = 0.0
    warm: bool = False
    #: Bumped when its builder is lost, so the finish of that run is ignored.
    attempt: int = 0
    builder: Builder | None = None
    #: The warm builder whose slot it waits for.
    waiting_on: Builder | None = None


@dataclass(slots=True, eq=False)
class Builder:
    id: str
    pool: str
    slots: int
    requested: float
    ready: float | None = None
    gone: float | None = None
    state: BuilderState = BuilderState.ACTIVE
    running: dict[int, Build] = field(default_factory=dict)
    #: Builds sent to this builder's own queue by affinity.
    waiting: deque[Build] = field(default_factory=deque)
    #: Apps whose caches it holds, least recently built first.
    cache: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class Figures:
    waits: list[float] = field(default_factory=list)
    busy_seconds: float = 0.0
    slot_seconds: float = 0.0
    builder_seconds: float = 0.0
    busy_by_pool: dict[str, float] = field(default_factory=dict)
    done: int = 0
    warm: int = 0
    rescheduled: int = 0
    lost: int = 0
    peak_backlog: int = 0
    peak_at: float = 0.0
    #: The most builders (starting or up) a pool had, and all pools at once.
    peak_builders: dict[str, int] = field(default_factory=dict)
    peak_fleet: int = 0
    #: Builds that waited for their warm builder, and those that gave up after WAIT.
    affinity_waits: int = 0
    affinity_timeouts: int = 0
    end: float = 0.0


# The workload, the same for both runs.


def shape(t: float) -> float:
    """The arrival rate at T seconds into the day, relative to the night's."""
    hour = t / 3600 % 24
    start, end = PEAK_HOURS
    if start <= hour <= end:
        rise = 1.0
    elif start - RAMP < hour < start:
        rise = (1 - math.cos(math.pi * (hour - start + RAMP) / RAMP)) / 2
    elif end < hour < end + RAMP:
        rise = (1 + math.cos(math.pi * (hour - end) / RAMP)) / 2
    else:
        rise = 0.0
    return 1 + (PEAK - 1) * rise


def arrivals(rng: random.Random) -> list[float]:
    """Arrival times over the day, by thinning a Poisson process at the peak's rate."""
    mean_shape = statistics.fmean(shape(minute * 60.0) for minute in range(24 * 60))
    top = BUILDS / DAY * PEAK / mean_shape
    out, t = [], 0.0
    while (t := t + rng.expovariate(top)) < DAY:
        if rng.random() * PEAK < shape(t):
            out.append(t)
    return out


def apps(rng: random.Random) -> list[App]:
    return [
        App(
            name=f"app-{i}",
            plan="pro" if rng.random() < PRO else "free",
            region="eu" if rng.random() < EU else "us",
            needs=("eu-registry",) if rng.random() < EU_REGISTRY else (),
            median=MEDIAN * rng.lognormvariate(0, APP_SIGMA),
        )
        for i in range(APPS)
    ]


def pushes(seed: int) -> list[Push]:
    rng = random.Random(seed)
    tenants = apps(rng)
    times = arrivals(rng)
    weights = list(itertools.accumulate(1 / rank**ZIPF for rank in range(1, APPS + 1)))
    who = rng.choices(tenants, cum_weights=weights, k=len(times))
    return [
        Push(t, app, min(CAP, app.median * rng.lognormvariate(0, BUILD_SIGMA)))
        for t, app in zip(times, who, strict=True)
    ]


# One day of the fleet.


class Day:
    """The fleet through one day of PUSHES: autoscaled, or a FIXED number of builders a pool."""

    def __init__(
        self, pushes: list[Push], rules: dispatch.Rules, seed: int, fixed: dict[str, int] | None
    ) -> None:
        self.now = 0.0
        self.events: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self.order = itertools.count()
        self.rng = random.Random(seed)
        self.rules = rules
        self.policies = rules.pools
        self.autoscaled = fixed is None
        #: Every builder of the day, by id; those up (ready, not gone) in order of start.
        self.builders: dict[str, Builder] = {}
        self.up: dict[Builder, None] = {}
        self.live = dict.fromkeys(self.policies, 0)
        self.records: dict[str, BuilderRecord] = {}
        self.queues: dict[str, deque[Build]] = {pool: deque() for pool in self.policies}
        self.free: dict[str, dict[Builder, None]] = {pool: {} for pool in self.policies}
        self.starting: dict[str, list[Builder]] = {pool: [] for pool in self.policies}
        self.sizers = {pool: sizing.Sizer(policy) for pool, policy in self.policies.items()}
        self.last: dict[str, str] = {}
        self.figures = Figures(
            busy_by_pool=dict.fromkeys(self.policies, 0.0),
            peak_builders=dict.fromkeys(self.policies, 0),
        )
        self.builds = [Build(i, push) for i, push in enumerate(pushes)]
        for build in self.builds:
            self.at(build.push.arrived, self.arrive, build)
        for pool, policy in self.policies.items():
            for _ in range(policy.min if fixed is None else fixed[pool]):
                self.ready(self.add_builder(pool))
        self.at(0.0, self.heartbeat)
        self.at(self.rng.expovariate(LOSSES_AN_HOUR / 3600), self.lose)
        if self.autoscaled:
            self.at(0.0, self.scale)

    def at(self, t: float, handler: Callable[[Any], None], arg: Any = None) -> None:
        heapq.heappush(self.events, (t, next(self.order), handler, arg))

    def run(self) -> Figures:
        while self.events:
            t, _, handler, arg = heapq.heappop(self.events)
            if t > DAY + DRAIN_LIMIT:
                break
            self.now = t
            handler(arg)
            if t >= DAY and self.figures.done == len(self.builds):
                break
        return self.close()

    # Events: one method each.

    def arrive(self, build: Build) -> None:
        app = build.push.app
        build.pool, _ = self.rules.pool_for(app.plan, app.region, app.needs)
        warm = affinity.warm_builder(
            self.last.get(app.name), build.pool, self.records.values(), self.now
        )
        if warm is None:
            self.enqueue(build)
            return
        builder = self.builders[warm]
        if builder in self.free[build.pool]:
            self.start(build, builder)
            return
        build.waiting_on = builder
        builder.waiting.append(build)
        self.figures.affinity_waits += 1
        self.at(self.now + affinity.WAIT, self.stop_waiting, build)

    def stop_waiting(self, build: Build) -> None:
        """affinity.WAIT is over: a build still waiting for its warm builder joins the pool's
        queue."""
        if build.waiting_on is not None:
            build.waiting_on = None
            self.figures.affinity_timeouts += 1
            self.enqueue(build)

    def finish(self, run: tuple[Build, int]) -> None:
        build, attempt = run
        builder = build.builder
        if attempt != build.attempt or builder is None:
            return  # its builder was lost meanwhile
        del builder.running[build.id]
        self.count_busy(build)
        self.figures.done += 1
        self.figures.warm += build.warm
        app = build.push.app.name
        self.last[app] = builder.id
        builder.cache[app] = None
        builder.cache.move_to_end(app)
        if len(builder.cache) > CACHE_APPS:
            builder.cache.popitem(last=False)
        if builder.state is not BuilderState.DRAINING:
            self.take_next(builder)
        elif not builder.running:
            self.retire(builder, BuilderState.DRAINED)

    def heartbeat(self, _: None = None) -> None:
        """Every live builder puts its record; records long silent are forgotten."""
        for builder in self.up:
            self.records[builder.id] = self.record(builder)
        for id, record in list(self.records.items()):
            if self.now - record.heartbeat_at > FORGET_AFTER:
                del self.records[id]
        self.at(self.now + HEARTBEAT_EVERY, self.heartbeat)

    def scale(self, _: None = None) -> None:
        """The autoscaler's run: each pool resized by its policy."""
        for pool, sizer in self.sizers.items():
            load = self.load(pool)
            wanted = sizer.size(load, self.now)
            if wanted > load.builders:
                self.grow(pool, wanted - load.builders)
            elif wanted < load.builders:
                self.shrink(pool, load.builders - wanted)
        self.at(self.now + TICK, self.scale)

    def ready(self, builder: Builder) -> None:
        """A started builder polls its pool's queue (unless it was called off meanwhile)."""
        if builder.gone is not None:
            return
        self.starting[builder.pool].remove(builder)
        builder.ready = self.now
        self.up[builder] = None
        self.records[builder.id] = self.record(builder)
        self.mark(builder)
        self.dispatch(builder.pool)

    def lose(self, _: None = None) -> None:
        """A builder falls silent: its builds go back to the queue after the heartbeat
        timeout, and its machine comes back later as a new builder, with no cache."""
        self.at(self.now + self.rng.expovariate(LOSSES_AN_HOUR / 3600), self.lose)
        if not self.up:
            return
        builder = self.rng.choice(list(self.up))
        cut = list(builder.running.values())
        for build in cut:
            self.count_busy(build)
            build.attempt += 1
            build.builder = None
        builder.running.clear()
        self.retire(builder, BuilderState.LOST)
        if cut:
            self.at(self.now + HEARTBEAT_TIMEOUT, self.reschedule, cut)
        self.at(self.now + self.rng.expovariate(1 / RESTART), self.restart, builder.pool)

    def restart(self, pool: str) -> None:
        self.grow(pool, 1)

    def reschedule(self, builds: list[Build]) -> None:
        for build in builds:
            self.figures.rescheduled += 1
            self.enqueue(build)

    # What the events share.

    def enqueue(self, build: Build) -> None:
        build.queued_at = self.now
        self.queues[build.pool].append(build)
        backlog = sum(len(queue) for queue in self.queues.values())
        if backlog > self.figures.peak_backlog:
            self.figures.peak_backlog, self.figures.peak_at = backlog, self.now
        self.dispatch(build.pool)

    def dispatch(self, pool: str) -> None:
        """Free slots of the pool take its queued builds, first come first served."""
        queue, free = self.queues[pool], self.free[pool]
        while queue and free:
            self.start(queue.popleft(), next(iter(free)))

    def take_next(self, builder: Builder) -> None:
        """A slot freed: a build waiting for this builder's cache first, else the pool's."""
        while builder.waiting:
            build = builder.waiting.popleft()
            if build.waiting_on is builder:
                build.waiting_on = None
                self.start(build, builder)
                return
        self.mark(builder)
        self.dispatch(builder.pool)

    def start(self, build: Build, builder: Builder) -> None:
        app = build.push.app.name
        build.warm = self.last.get(app) == builder.id and app in builder.cache
        build.builder, build.run_started = builder, self.now
        if build.started is None:
            build.started = self.now
            self.figures.waits.append(self.now - build.push.arrived)
        builder.running[build.id] = build
        self.mark(builder)
        took = build.push.cold * (WARM if build.warm else 1.0)
        self.at(self.now + took, self.finish, (build, build.attempt))

    def mark(self, builder: Builder) -> None:
        """Keep the pool's free builders: active, up, with a slot to spare."""
        free = self.free[builder.pool]
        if (
            builder.state is BuilderState.ACTIVE
            and builder.ready is not None
            and builder.gone is None
            and len(builder.running) < builder.slots
        ):
            free[builder] = None
        else:
            free.pop(builder, None)

    def add_builder(self, pool: str) -> Builder:
        builder = Builder(f"{pool}-{len(self.builders)}", pool, self.policies[pool].slots, self.now)
        self.builders[builder.id] = builder
        self.starting[pool].append(builder)
        self.live[pool] += 1
        peaks = self.figures.peak_builders
        peaks[pool] = max(peaks[pool], self.live[pool])
        self.figures.peak_fleet = max(self.figures.peak_fleet, sum(self.live.values()))
        return builder

    def grow(self, pool: str, more: int) -> None:
        for _ in range(more):
            self.at(self.now + STARTUP, self.ready, self.add_builder(pool))

    def shrink(self, pool: str, surplus: int) -> None:
        """Call off builders still starting, then drain the least busy."""
        while surplus and self.starting[pool]:
            self.gone(self.starting[pool].pop())
            surplus -= 1
        up = [b for b in self.up if b.pool == pool and b.state is BuilderState.ACTIVE]
        for builder in sorted(up, key=lambda b: len(b.running))[:surplus]:
            builder.state = BUILDERS.advance(builder.state, BuilderState.DRAINING)
            self.mark(builder)
            self.records[builder.id] = self.record(builder)
            if not builder.running:
                self.retire(builder, BuilderState.DRAINED)

    def retire(self, builder: Builder, state: BuilderState) -> None:
        builder.state = BUILDERS.advance(builder.state, state)
        self.mark(builder)
        if state is BuilderState.DRAINED:
            self.records[builder.id] = self.record(builder)
        self.gone(builder)

    def gone(self, builder: Builder) -> None:
        builder.gone = self.now
        self.up.pop(builder, None)
        self.live[builder.pool] -= 1
        self.count_builder(builder, self.now)

    def load(self, pool: str) -> sizing.PoolLoad:
        """The pool as the autoscaler sees it: the registry's records, and the queue."""
        seen = [r.seen(self.now) for r in self.records.values() if r.pool == pool]
        active = [r for r in seen if r.state == BuilderState.ACTIVE]
        queue = self.queues[pool]
        return sizing.PoolLoad(
            builders=len(active) + len(self.starting[pool]),
            slots=sum(r.slots for r in active),
            busy=sum(r.busy for r in active),
            queued=len(queue),
            oldest_wait=self.now - queue[0].queued_at if queue else 0.0,
        )

    def record(self, builder: Builder) -> BuilderRecord:
        return BuilderRecord(
            id=builder.id,
            pool=builder.pool,
            slots=builder.slots,
            busy=len(builder.running),
            state=builder.state.value,
            started_at=builder.requested,
            heartbeat_at=self.now,
        )

    def count_busy(self, build: Build) -> None:
        took = self.now - build.run_started
        self.figures.busy_seconds += took
        self.figures.busy_by_pool[build.pool] += took

    def count_builder(self, builder: Builder, until: float) -> None:
        self.figures.builder_seconds += until - builder.requested
        if builder.ready is not None:
            self.figures.slot_seconds += builder.slots * (until - builder.ready)

    def close(self) -> Figures:
        figures = self.figures
        figures.end = self.now
        for builder in self.builders.values():
            if builder.gone is None:
                self.count_builder(builder, self.now)
        figures.lost = len(self.builds) - figures.done
        return figures


# The report.


def span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def clock(seconds: float) -> str:
    day, rest = divmod(int(seconds), 24 * 3600)
    return f"{'+1 day ' if day else ''}{rest // 3600:02d}:{rest % 3600 // 60:02d}"


def rows(name: str, figures: Figures) -> list[tuple[str, str]]:
    q = statistics.quantiles(figures.waits, n=100)
    peaks = "/".join(str(n) for n in figures.peak_builders.values())
    return [
        (f"{name}: queue wait p50 / p95 / p99", f"{span(q[49])} / {span(q[94])} / {span(q[98])}"),
        (
            f"{name}: waited for the warm builder / gave up after {affinity.WAIT:.0f} s",
            f"{figures.affinity_waits:,} / {figures.affinity_timeouts:,} builds",
        ),
        (f"{name}: cache-warm builds", f"{figures.warm / figures.done:.1%}"),
        (
            f"{name}: builder utilisation (busy / available slot-seconds)",
            f"{figures.busy_seconds / figures.slot_seconds:.0%}",
        ),
        (
            f"{name}: builder-hours; peak builders (all; {'/'.join(figures.peak_builders)})",
            f"{figures.builder_seconds / 3600:,.0f}; {figures.peak_fleet} ({peaks})",
        ),
        (
            f"{name}: builds rescheduled from lost builders / lost",
            f"{figures.rescheduled} / {figures.lost}",
        ),
        (
            f"{name}: peak backlog (builds in pool queues)",
            f"{figures.peak_backlog:,} at {clock(figures.peak_at)}; "
            f"last build done {clock(figures.end)}",
        ),
    ]


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--trial"]
    seed = int(args[0]) if args else SEED
    print(f"seed {seed}")
    rules = dispatch.parse(FLEET, "fleet_sim")
    started = time.perf_counter()
    day = pushes(seed)
    scaled = Day(day, rules, seed + 1, fixed=None).run()
    average = {
        pool: math.ceil(scaled.busy_by_pool[pool] / DAY / (policy.target * policy.slots))
        for pool, policy in rules.pools.items()
    }
    runs = {
        "autoscaled": scaled,
        "fixed for the average": Day(day, rules, seed + 1, fixed=average).run(),
        "fixed for the peak": Day(day, rules, seed + 1, fixed=scaled.peak_builders).run(),
    }
    took = time.perf_counter() - started
    for name, figures in runs.items():
        assert figures.lost == 0, f"{name}: {figures.lost} builds lost"

    colds = [push.cold for push in day]
    peak = sum(PEAK_HOURS[0] * 3600 <= push.arrived < PEAK_HOURS[1] * 3600 for push in day)
    table(
        "Fleet simulation: one day, autoscaled and fixed",
        (
            f"Machine: {machine()}; seed {seed}; simulated in {took:.0f} s of wall time. "
            f"{len(day):,} builds of {APPS:,} apps (Zipf s={ZIPF} pushes; {PRO:.0%} pro, "
            f"{EU:.0%} eu, {EU_REGISTRY:.0%} need eu-registry) over 24 h, {PEAK} times the night's "
            f"rate 13:00 to 20:00 ({peak / len(day):.0%} of the builds); cold build p50 "
            f"{statistics.median(colds):.0f} s, mean {statistics.fmean(colds):.0f} s, cap "
            f"{CAP:.0f} s; warm {WARM} of cold; a builder keeps {CACHE_APPS} apps' caches. "
            f"Pools default/eu/fast by the dispatch rules, builders of 4 slots started in "
            f"{STARTUP:.0f} s; {LOSSES_AN_HOUR:.0f} builders lost an hour, back after "
            f"{RESTART / 60:.0f} min on average. Autoscaled: sizing.Sizer every "
            f"{TICK:.0f} s (target 0.7, idle_after 300 s, from each pool's min), draining the "
            f"least busy builders. Fixed for the average: {dict_text(average)} builders (the "
            f"day's busy slots at target 0.7); for the peak: "
            f"{dict_text(scaled.peak_builders)} (the autoscaled peak)."
        ),
        [row for name, figures in runs.items() for row in rows(name, figures)],
        save="--trial" not in sys.argv,
    )


def dict_text(sizes: dict[str, int]) -> str:
    return ", ".join(f"{pool} {n}" for pool, n in sizes.items())


if __name__ == "__main__":
    main()
