"""Dispatch rules: which pool builds an app. Rules live in config (SHIPWAY_FLEET_RULES, a
YAML file), are tried in order, and the first that matches wins; with none matching (or no
rules) a build goes to pool `default`.

    rules:
      - {plan: pro, pool: fast}                 # paid plans build on the faster pool
      - {needs: eu-registry, pool: eu}          # a source reachable only from the EU
      - {region: eu, pool: eu}

A rule matches on any of `plan` and `region` (the app's) and `needs` (one of what the build
says it needs, `build: {needs: [...]}` in its shipway.yml); a rule with none matches all.
The same file may size pools with `pools:` (see shipway.fleet.sizing); both keys are
optional.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipway.errors import ValidationError
from shipway.fleet import sizing
from shipway.fleet.pools import DEFAULT_POOL, check_pool

MATCHES = ("plan", "region", "needs")
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Rule:
    pool: str
    plan: str | None = None
    region: str | None = None
    needs: str | None = None

    def matches(self, plan: str, region: str, needs: frozenset[str]) -> bool:
        return (
            (self.plan is None or self.plan == plan)
            and (self.region is None or self.region == region)
            and (self.needs is None or self.needs in needs)
        )

    def describe(self) -> str:
        said = [f"{key}={value}" for key, value in asdict(self).items() if key != "pool" and value]
        return " and ".join(said) or "any build"


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = ()
    #: The autoscaling policy of each pool that has one.
    pools: Mapping[str, sizing.Policy] = field(default_factory=dict, hash=False)

    @property
    def use_needs(self) -> bool:
        """Whether a rule looks at what builds need (then their shipway.yml is read)."""
        return any(rule.needs is not None for rule in self.rules)

    def pool_for(
        self, plan: str, region: str, needs: Iterable[str] = ()
    ) -> tuple[str, Rule | None]:
        """The pool of a build of an app with PLAN and REGION that NEEDS these; the rule that
        chose it (None: no rule matched, the default pool)."""
        wanted = frozenset(needs)
        for rule in self.rules:
            if rule.matches(plan, region, wanted):
                return rule.pool, rule
        return DEFAULT_POOL, None


def parse(data: Any, where: str) -> Rules:
    """RULES from a YAML document's data; ValidationError names the rule or pool that is
    wrong."""
    if data is None:
        return Rules()
    if not isinstance(data, dict) or set(data) - {"rules", "pools"}:
        raise ValidationError(
            f"{where}: expected `rules:`, a list of rules, and/or `pools:`, policies by pool"
        )
    if not isinstance(data.get("rules", []), list):
        raise ValidationError(f"{where}: expected `rules:`, a list of rules")
    rules = []
    for index, raw in enumerate(data.get("rules", []), 1):
        at = f"{where}: rule {index}"
        if not isinstance(raw, dict):
            raise ValidationError(f"{at} must be a mapping such as {{plan: pro, pool: fast}}")
        unknown = sorted(set(raw) - {"pool", *MATCHES})
        if unknown:
            raise ValidationError(
                f"{at} has unknown keys {', '.join(map(str, unknown))}; "
                f"a rule has pool and any of {', '.join(MATCHES)}"
            )
        for key in MATCHES:
            if key in raw and (not isinstance(raw[key], str) or not raw[key]):
                raise ValidationError(f"{at}: {key} must be a word")
        rules.append(
            Rule(
                pool=check_pool(raw.get("pool"), f"{at}: pool"),
                plan=raw.get("plan"),
                region=raw.get("region"),
                needs=raw.get("needs"),
            )
        )
    return Rules(tuple(rules), sizing.parse(data.get("pools"), where))


def load(path: Path | None) -> Rules:
    """The rules in the file at PATH (none: no rules)."""
    if path is None:
        return Rules()
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValidationError(f"{path} is larger than {MAX_BYTES // 1024} KiB")
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValidationError(f"cannot read the fleet rules in {path}: {e}") from e
    return parse(data, str(path))
