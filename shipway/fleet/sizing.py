"""Autoscaling: how many builders a pool should have for the load it carries. A policy per
pool lives beside the dispatch rules (`pools:` in SHIPWAY_FLEET_RULES):

    pools:
      default: {min: 0, max: 4, target: 0.7, slots: 2, idle_after: 300,
                command: "/usr/local/bin/builders-scale"}

The pool is sized so that its slots in use plus its builds waiting fill TARGET of the slots
of the builders it has; it grows at once and shrinks only after it has needed fewer for
IDLE_AFTER seconds. Shrinking drains builders: they take no new build and stop when the ones
they run have finished, so no build is lost. This module is the policy alone; it starts and
stops nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from shipway.errors import ValidationError
from shipway.fleet.pools import check_pool


@dataclass(frozen=True)
class Policy:
    #: Fewest builders; 0 lets an idle pool scale to zero (a queued build wakes it).
    min: int = 0
    #: Most builders; 0 keeps the pool as it is.
    max: int = 10
    #: The share of slots to keep in use, in (0, 1]: the rest is headroom for bursts.
    target: float = 0.7
    #: Slots of each builder the policy starts.
    slots: int = 2
    #: Seconds the pool must have needed fewer builders before it shrinks.
    idle_after: float = 300.0
    #: Run with the pool and the desired count to resize it.
    command: str | None = None
    #: Told the pool and the desired count to resize it: an http(s) URL.
    webhook: str | None = None


@dataclass(frozen=True)
class PoolLoad:
    """A pool as it is now."""

    #: Live builders (and those starting).
    builders: int
    #: Slots of the live builders.
    slots: int
    #: Slots in use.
    busy: int
    #: Builds waiting for a slot.
    queued: int
    #: Seconds the longest-waiting build has waited.
    oldest_wait: float = 0.0


def needed(policy: Policy, load: PoolLoad) -> int:
    """The builders that hold the pool's busy and queued builds at its target, within [min,
    max]. A queued build makes it at least 1, waking a pool scaled to zero, unless max is 0."""
    share = (load.busy + load.queued) / (policy.target * policy.slots)
    wanted = math.ceil(round(share, 9))  # not 31 for 21 / 0.7 = 30.000000000000004
    return max(policy.min, min(policy.max, wanted))


def desired(policy: Policy, load: PoolLoad, idle_for: float, peak: int = 0) -> int:
    """The builders the pool should have, where IDLE_FOR is how long it has needed fewer than
    it has (by `needed`) and PEAK the most it needed over the last IDLE_AFTER: it shrinks
    only after IDLE_AFTER of needing fewer, and then to that peak, not to the need of the
    moment, so a lull between bursts does not throw warm caches away. It is never kept
    above max."""
    wanted = needed(policy, load)
    if wanted >= load.builders:
        return wanted
    if idle_for < policy.idle_after:
        return min(load.builders, policy.max)
    return min(max(wanted, peak), load.builders, policy.max)


@dataclass
class Sizer:
    """One pool's sizing over time: what `desired` needs to know of the pool's past."""

    policy: Policy
    _fewer_since: float | None = None
    _needs: deque[tuple[float, int]] = field(default_factory=deque)

    def size(self, load: PoolLoad, now: float) -> int:
        """The builders the pool should have at NOW, with LOAD."""
        need = needed(self.policy, load)
        self._needs.append((now, need))
        while self._needs[0][0] < now - self.policy.idle_after:
            self._needs.popleft()
        if need >= load.builders:
            self._fewer_since = None
        elif self._fewer_since is None:
            self._fewer_since = now
        idle_for = 0.0 if self._fewer_since is None else now - self._fewer_since
        return desired(self.policy, load, idle_for, max(n for _, n in self._needs))


def parse(data: Any, where: str) -> dict[str, Policy]:
    """The policies of `pools:` (DATA, a mapping of pool to policy); ValidationError names the
    pool and the key that is wrong."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: `pools:` must map pools to policies")
    return {
        check_pool(pool, f"{where}: pools: a pool name"): _policy(raw, f"{where}: pool {pool}")
        for pool, raw in data.items()
    }


_KEYS = tuple(f.name for f in fields(Policy))


def _policy(raw: Any, at: str) -> Policy:
    if raw is None:
        return Policy()
    if not isinstance(raw, dict):
        raise ValidationError(f"{at} must be a mapping such as {{min: 0, max: 4}}")
    unknown = sorted(map(str, set(raw) - set(_KEYS)))
    if unknown:
        raise ValidationError(
            f"{at} has unknown keys {', '.join(unknown)}; a policy has {', '.join(_KEYS)}"
        )
    policy = Policy(**raw)
    for key in ("min", "max", "slots"):
        value = getattr(policy, key)
        if not _is_int(value) or value < (1 if key == "slots" else 0):
            least = "1 or more" if key == "slots" else "0 or more"
            raise ValidationError(f"{at}: {key} must be a whole number, {least}; got {value!r}")
    if policy.min > policy.max:
        raise ValidationError(f"{at}: min ({policy.min}) is more than max ({policy.max})")
    if not _is_number(policy.target) or not 0 < policy.target <= 1:
        raise ValidationError(f"{at}: target must be a share in (0, 1]; got {policy.target!r}")
    if not _is_number(policy.idle_after) or policy.idle_after < 0:
        raise ValidationError(f"{at}: idle_after must be seconds, 0 or more")
    if policy.command is not None and (not isinstance(policy.command, str) or not policy.command):
        raise ValidationError(f"{at}: command must be a command line")
    if policy.webhook is not None and not _is_web(policy.webhook):
        raise ValidationError(f"{at}: webhook must be an http(s) URL; got {policy.webhook!r}")
    return policy


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_web(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
