"""Benchmark: SubscriptionIndex.match against evaluating every subscription with `matches`.

Builds realistic subscriptions (literal project/flag keys, tag filters, wildcard and
critical environments, notResources, denies, action globs) and a stream of events (the
Unleash fixture events plus synthetic ones), times both ways per event in the same run,
checks they agree on every event, and prints p50/p99 and the median-based speedup.

Then the adversarial part: globs that make a backtracking matcher take exponential time
(`*a*a*a*a*a*a*a*a*a*a*b`, `*-*-*-prod`, many-star tag globs) against names of 40, 255
and 4096 characters, each match timed against the standard library's
`fnmatch.fnmatchcase` in the same run (target: every match under 1 ms), and events with
such names through the index and the loop, with hostile subscriptions added.

    .venv/bin/python bench/policies.py [--subscriptions 10000] [--events 500]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import (  # noqa: E402  (the repository root is put on the path first)
    EventTarget,
    Statement,
    SubscriptionIndex,
    map_event,
    matches,
    parse_statements,
)
from policies.globs import Glob  # noqa: E402

FIXTURE_EVENTS = ROOT / "tests/data/shared/fixtures/unleash/unleash-8.2.0-events-sample.jsonl"
PROJECTS = ["default", *(f"proj-{n:03}" for n in range(199))]
ENVIRONMENTS = ["production", "staging", "development", "qa"]
TEAMS = [f"team-{n:02}" for n in range(40)]
FLAG_TYPES = [
    "feature-environment-enabled",
    "feature-environment-disabled",
    "feature-strategy-update",
    "feature-strategy-add",
    "feature-created",
    "feature-metadata-updated",
    "feature-tagged",
    "feature-archived",
    "feature-variants-updated",
]
OTHER_TYPES = [
    "strategy-created",
    "project-created",
    "user-created",
    "segment-updated",
    "tag-created",
]


def flag_key(rng: random.Random, project: str) -> str:
    # Unleash feature names are unique across the whole instance, so they carry the project.
    return f"{project}.flag-{rng.randrange(60):02}"


def allow(resources: list[str], actions: list[str]) -> dict[str, Any]:
    return {"effect": "allow", "resources": resources, "actions": actions}


def deny(resources: list[str], actions: list[str]) -> dict[str, Any]:
    return {"effect": "deny", "resources": resources, "actions": actions}


def literal_flag(rng: random.Random, project: str) -> list[dict[str, Any]]:
    return [allow([f"proj/{project}:env/*:flag/{flag_key(rng, project)}"], ["*"])]


def project_flags(rng: random.Random, project: str) -> list[dict[str, Any]]:
    env = rng.choice(["*", "production", "staging"])
    return [allow([f"proj/{project}:env/{env}:flag/*"], rng.choice([["*"], ["update*"]]))]


def tagged(rng: random.Random, project: str) -> list[dict[str, Any]]:
    tags = ",".join(rng.sample(TEAMS, rng.choice([1, 1, 2])))
    return [allow([f"proj/*:env/*:flag/*;{tags}"], ["*"])]


def critical(rng: random.Random, project: str) -> list[dict[str, Any]]:
    actions = rng.choice([["updateOn"], ["updateOn", "updateRules"], ["feature-environment-*"]])
    return [allow([f"proj/{project}:env/*;{{critical:true}}:flag/*"], actions)]


def not_resources(rng: random.Random, project: str) -> list[dict[str, Any]]:
    actions = rng.choice([["createFlag", "deleteFlag"], ["create*"]])
    return [
        {"effect": "allow", "notResources": [f"proj/{project}:env/*:flag/*"], "actions": actions}
    ]


def with_deny(rng: random.Random, project: str) -> list[dict[str, Any]]:
    return [
        allow([f"proj/{project}:env/*:flag/*"], ["*"]),
        deny(["proj/*:env/*;{critical:true}:flag/*"], ["update*"]),
    ]


def action_globs(rng: random.Random, project: str) -> list[dict[str, Any]]:
    pattern = rng.choice(["update*", "*Flag", "feature-environment-*"])
    return [allow([f"proj/{project}:env/*:flag/*", f"proj/{project}"], [pattern])]


def literal_actions(rng: random.Random, project: str) -> list[dict[str, Any]]:
    return [
        allow(["proj/*:env/*:flag/*"], [rng.choice(["createFlag", "deleteFlag", "updateTags"])])
    ]


def other_resources(rng: random.Random, project: str) -> list[dict[str, Any]]:
    spec = rng.choice(["strategy/*", "proj/*", "member/*", "proj/*:env/*:segment/*", "tag/*"])
    return [allow([spec], ["*"])]


def everything(rng: random.Random, project: str) -> list[dict[str, Any]]:
    return []


MIX: list[tuple[Callable[[random.Random, str], list[dict[str, Any]]], int]] = [
    (literal_flag, 30),
    (project_flags, 14),
    (tagged, 14),
    (critical, 10),
    (not_resources, 4),
    (with_deny, 10),
    (action_globs, 6),
    (literal_actions, 4),
    (other_resources, 6),
    (everything, 2),
]


def build_subscriptions(count: int, rng: random.Random) -> dict[str, list[Statement]]:
    makers = [maker for maker, weight in MIX for _ in range(weight)]
    return {
        f"sub-{n:05}": parse_statements(rng.choice(makers)(rng, rng.choice(PROJECTS)))
        for n in range(count)
    }


def synthetic_event(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.1:
        return {"type": rng.choice(OTHER_TYPES), "data": {"name": "x"}, "project": None}
    kind = rng.choice(FLAG_TYPES)
    global_kind = kind in ("feature-created", "feature-tagged", "feature-archived")
    environment = None if global_kind else rng.choice(ENVIRONMENTS)
    tags = [{"type": "simple", "value": team} for team in rng.sample(TEAMS, rng.choice([0, 1, 2]))]
    project = rng.choice(PROJECTS)
    return {
        "type": kind,
        "project": project,
        "environment": environment,
        "featureName": flag_key(rng, project),
        "tags": tags,
    }


def build_events(count: int, rng: random.Random) -> list[EventTarget]:
    fixture = [json.loads(line) for line in FIXTURE_EVENTS.read_text().splitlines() if line]
    synthetic = [synthetic_event(rng) for _ in range(max(count - len(fixture), 0))]
    return [map_event(event) for event in [*fixture, *synthetic][:count]]


def timed(
    function: Callable[[EventTarget], set[str]], target: EventTarget
) -> tuple[float, set[str]]:
    start = time.perf_counter()
    result = function(target)
    return (time.perf_counter() - start) * 1000, result


def brute_force(subscriptions: dict[str, list[Statement]], target: EventTarget) -> set[str]:
    return {sid for sid, statements in subscriptions.items() if matches(statements, target)}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    subscriptions = build_subscriptions(args.subscriptions, rng)
    index = SubscriptionIndex()
    start = time.perf_counter()
    for sid, statements in subscriptions.items():
        index.add(sid, statements)
    build_ms = (time.perf_counter() - start) * 1000
    events = build_events(args.events, rng)

    index_ms, loop_ms, matched = [], [], []
    for target in events:
        index_time, found = timed(index.match, target)
        loop_time, expected = timed(partial(brute_force, subscriptions), target)
        if found != expected:
            print(f"MISMATCH on {target.event_type} {target.resource}", file=sys.stderr)
            return 1
        index_ms.append(index_time)
        loop_ms.append(loop_time)
        matched.append(len(found))

    distinct = len({tuple(statements) for statements in subscriptions.values()})
    report(args, distinct, build_ms, index_ms, loop_ms, matched)
    slow_globs = adversarial_globs()
    if not adversarial_events(subscriptions, index, random.Random(args.seed + 1)):
        return 1
    return 1 if slow_globs else 0


def report(
    args: argparse.Namespace,
    distinct: int,
    build_ms: float,
    index_ms: list[float],
    loop_ms: list[float],
    matched: list[int],
) -> None:
    ratio = statistics.median(loop_ms) / statistics.median(index_ms)
    print(f"subscriptions: {args.subscriptions} ({distinct} distinct policies)  ", end="")
    print(f"events: {len(index_ms)}  seed: {args.seed}")
    print(f"index build: {build_ms:.0f} ms  matches per event: median {statistics.median(matched)}")
    print("identical results on every event: yes")
    for name, values in (("index.match", index_ms), ("loop matches", loop_ms)):
        p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
        print(f"{name:>13}: p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    print(f"speedup (median loop / median index): {ratio:.0f}x")


# Patterns that make a backtracking matcher explode on near misses, and the unit their
# inputs repeat.
ADVERSARIAL = [
    ("*a*a*a*a*a*a*a*a*a*a*b", "a"),
    ("*-*-*-prod", "-"),
    ("*-*-*-prod", "ab-"),
    ("*" + "a*" * 40 + "b", "a"),
    ("team-*-*-*-*-*-*-*-*-x", "team-"),
    ("a*" * 30 + "a", "a"),
]
LENGTHS = (40, 255, 4096)
MATCH_TARGET_MS = 1.0


def adversarial_values(pattern: str, unit: str, length: int) -> list[str]:
    """Near misses (and a few matches) of `length` characters, 100 of them."""
    pieces = pattern.split("*")
    base = (unit * length)[:length]
    # the anchors hold, so the middle pieces are searched across the whole value
    anchored = pieces[0] + base[len(pieces[0]) + len(pieces[-1]) :] + pieces[-1]
    hollow = pieces[0] + "c" * (length - len(pieces[0]) - len(pieces[-1])) + pieces[-1]
    return [base, anchored, hollow, base.upper()] * 25


def time_each(match: Callable[[str], object], values: list[str]) -> list[float]:
    times = []
    for value in values:
        start = time.perf_counter()
        match(value)
        times.append((time.perf_counter() - start) * 1000)
    return times


def adversarial_globs() -> int:
    """Glob.matches against fnmatch.fnmatchcase per match; the number of slow cells."""
    print("\nadversarial globs: ms per match, worst / median of 100 inputs")
    print(f"{'pattern':>26} {'length':>6}  {'Glob':>17}  {'fnmatchcase':>17}  ratio")
    slow = 0
    for pattern, unit in ADVERSARIAL:
        glob = Glob(pattern)
        stdlib = partial(fnmatch_case, pattern=pattern)
        stdlib("")  # compiles and caches its regex, as Glob compiles once
        for length in LENGTHS:
            values = adversarial_values(pattern, unit, length)
            ours, theirs = time_each(glob.matches, values), time_each(stdlib, values)
            if any(glob.matches(value) != stdlib(value) for value in values):
                print(f"MISMATCH with fnmatch on {pattern!r}", file=sys.stderr)
                slow += 1
            slow += max(ours) >= MATCH_TARGET_MS
            ratio = statistics.median(theirs) / statistics.median(ours)
            shown = pattern if len(pattern) <= 26 else pattern[:23] + "..."
            print(
                f"{shown:>26} {length:>6}  {max(ours):.4f} / {statistics.median(ours):.4f}"
                f"  {max(theirs):.4f} / {statistics.median(theirs):.4f}  {ratio:.1f}x"
            )
    verdict = "met" if not slow else f"NOT met in {slow} cells"
    print(f"target every Glob match < {MATCH_TARGET_MS} ms: {verdict}")
    return slow


def fnmatch_case(value: str, *, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def hostile_subscriptions(count: int) -> dict[str, list[Statement]]:
    """Subscriptions whose key, tag and action globs are all pathological."""
    made: dict[str, list[Statement]] = {}
    for n in range(count):
        star_a = "*a" * (5 + n % 20) + "*b"
        raw = [
            allow([f"proj/*-*-*-prod:env/{star_a}:flag/{star_a};{star_a}"], [star_a]),
            allow([f"proj/*:env/*:flag/*;*-*-*-*-*-*-{n}"], ["*-*-*-prod", "update*"]),
            deny([f"proj/{star_a}"], ["*a*a*a*a*a*a*a*a*a*a*b"]),
        ]
        made[f"hostile-{n:04}"] = parse_statements(raw)
    return made


def long_name_event(rng: random.Random, length: int) -> EventTarget:
    dashed = ("a-" * length)[:length]
    return map_event(
        {
            "type": rng.choice(FLAG_TYPES),
            "project": dashed,
            "environment": rng.choice([None, "a" * length]),
            "featureName": ("a" * length)[:length],
            "tags": [{"type": "simple", "value": dashed[: length - n]} for n in range(20)],
        }
    )


def adversarial_events(
    subscriptions: dict[str, list[Statement]], index: SubscriptionIndex, rng: random.Random
) -> bool:
    """Long-named events through the index and the loop, with 100 hostile subscriptions."""
    hostile = hostile_subscriptions(100)
    for sid, statements in hostile.items():
        index.add(sid, statements)
    everyone = {**subscriptions, **hostile}
    print("\nadversarial events (names of 255 and 4096 characters, 20 tags), 100 hostile subs")
    for length in (255, 4096):
        index_ms, loop_ms = [], []
        for _ in range(40):
            target = long_name_event(rng, length)
            index_time, found = timed(index.match, target)
            loop_time, expected = timed(partial(brute_force, everyone), target)
            if found != expected:
                print(f"MISMATCH on a {length}-character event", file=sys.stderr)
                return False
            index_ms.append(index_time)
            loop_ms.append(loop_time)
        ratio = statistics.median(loop_ms) / statistics.median(index_ms)
        print(
            f"  length {length:>4}: index.match worst {max(index_ms):.3f} ms"
            f" median {statistics.median(index_ms):.3f} ms;"
            f" loop worst {max(loop_ms):.3f} ms median {statistics.median(loop_ms):.3f} ms;"
            f" {ratio:.0f}x"
        )
    return True


if __name__ == "__main__":
    sys.exit(main())
