"""Find the subscriptions that receive an event without evaluating all of them.

Subscriptions with equal statements share one *policy*, evaluated once per event.
Only an `allow` statement can include an event, so each policy is filed under the
buckets of its allow statements; an event looks up the buckets it could match, and
the policies found there are evaluated exactly with `matches`. A statement is filed
under one *selector* per resource specifier:

- a literal key (no `*`) of one segment: `("key", shape, index, key)`;
- a literal tag item of one segment: `("tag", shape, index, tag)`;
- `env/*;{critical:true}`: the literal keys of the critical environments;
- otherwise the specifier's shape alone: `("shape", shape)`;

or, when its specifiers give no strong key and none of its `actions` is a bare `*`,
under its action patterns: `("action", name)` for a literal, `("glob", pattern)` for a
glob (an event tests each distinct glob once). `notResources` statements without such
actions go to the always-evaluate bucket; policies without statements receive
everything; deny-only policies are filed nowhere, as they never include anything.
An event segment with a global key (`None`) matches any key, so it looks up every
bucket filed at that segment position.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from policies.evaluation import DEFAULT_CRITICAL_ENVIRONMENTS, matches
from policies.globs import Glob
from policies.specifiers import ResourceSpecifier, SegmentSpecifier
from policies.statements import Statement
from policies.targets import EventTarget

__all__ = ["SubscriptionIndex"]

Bucket = tuple[object, ...]
Position = tuple[object, object]  # (shape, segment index)


class _Policy:
    """Statements shared by some subscriptions; hashed by identity, so cheaply."""

    __slots__ = ("buckets", "statements", "subscribers")

    def __init__(self, statements: tuple[Statement, ...], buckets: set[Bucket]) -> None:
        self.statements = statements
        self.buckets = buckets
        self.subscribers: set[str] = set()


class SubscriptionIndex:
    """Subscriptions by id, answering `match(target)` exactly as brute force would."""

    def __init__(
        self, *, critical_environments: frozenset[str] = DEFAULT_CRITICAL_ENVIRONMENTS
    ) -> None:
        self._critical = critical_environments
        self._policy_of: dict[str, _Policy] = {}
        self._policies: dict[tuple[Statement, ...], _Policy] = {}
        self._buckets: dict[Bucket, set[_Policy]] = {}
        self._positions: dict[Position, set[Bucket]] = defaultdict(set)
        self._globs: dict[str, Glob] = {}

    def __len__(self) -> int:
        return len(self._policy_of)

    def add(self, subscription_id: str, statements: Sequence[Statement]) -> None:
        """Index a subscription, replacing the one with the same id."""
        self.remove(subscription_id)
        key = tuple(statements)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = _Policy(key, set(_buckets_of(key, self._critical)))
            for bucket in policy.buckets:
                self._buckets.setdefault(bucket, set()).add(policy)
                self._register(bucket)
        policy.subscribers.add(subscription_id)
        self._policy_of[subscription_id] = policy

    def remove(self, subscription_id: str) -> None:
        """Forget a subscription; unknown ids are ignored."""
        policy = self._policy_of.pop(subscription_id, None)
        if policy is None:
            return
        policy.subscribers.discard(subscription_id)
        if policy.subscribers:
            return
        del self._policies[policy.statements]
        for bucket in policy.buckets:
            members = self._buckets[bucket]
            members.discard(policy)
            if not members:
                del self._buckets[bucket]
                self._unregister(bucket)

    def match(self, target: EventTarget) -> set[str]:
        """The ids of the subscriptions that receive the event."""
        found: set[str] = set()
        for policy in self._buckets.get(_EVERYTHING, ()):
            found |= policy.subscribers
        candidates = set(self._buckets.get(_ALWAYS, ()))
        for bucket in self._lookups(target):
            members = self._buckets.get(bucket)
            if members:
                candidates |= members
        for policy in candidates:
            if matches(policy.statements, target, critical_environments=self._critical):
                found |= policy.subscribers
        return found

    def _lookups(self, target: EventTarget) -> Iterator[Bucket]:
        """Every bucket a subscription that receives the event may be filed in."""
        shape = target.shape
        yield ("shape", shape)
        for name in target.actions:
            yield ("action", name)
        for pattern, glob in self._globs.items():
            if glob.matches_any(target.actions):
                yield ("glob", pattern)
        for index, segment in enumerate(target.segments):
            if segment.key is None:
                yield from self._positions.get((shape, index), ())
                continue
            yield ("key", shape, index, segment.key)
            for tag in segment.tags:
                yield ("tag", shape, index, tag)

    def _register(self, bucket: Bucket) -> None:
        """Note a new bucket where `_lookups` finds it without knowing its key."""
        position = _position(bucket)
        if position is not None:
            self._positions[position].add(bucket)
        elif bucket[0] == "glob":
            self._globs[str(bucket[1])] = Glob(str(bucket[1]))

    def _unregister(self, bucket: Bucket) -> None:
        position = _position(bucket)
        if position is not None:
            self._positions[position].discard(bucket)
            if not self._positions[position]:
                del self._positions[position]
        elif bucket[0] == "glob":
            del self._globs[str(bucket[1])]


_EVERYTHING: Bucket = ("everything",)
_ALWAYS: Bucket = ("always",)


def _position(bucket: Bucket) -> Position | None:
    if bucket[0] in ("key", "tag"):
        return (bucket[1], bucket[2])
    return None


def _buckets_of(statements: Sequence[Statement], critical: frozenset[str]) -> Iterator[Bucket]:
    """The buckets to file a policy under (none if it can never match)."""
    if not statements:
        yield _EVERYTHING
        return
    for statement in statements:
        if statement.effect == "allow":
            yield from _statement_buckets(statement, critical)


def _statement_buckets(statement: Statement, critical: frozenset[str]) -> Iterable[Bucket]:
    by_action = _action_buckets(statement)
    if statement.resources is None:
        return by_action or [_ALWAYS]
    selectors = [_selector(spec, critical) for spec in statement.resources]
    if by_action and any(strength < 2 for strength, _ in selectors):
        return by_action
    return [bucket for _, buckets in selectors for bucket in buckets]


def _action_buckets(statement: Statement) -> list[Bucket]:
    """Buckets by action pattern, or none when the actions select nothing (`*`, notActions)."""
    if statement.actions is None or any(glob.is_any for glob in statement.action_globs):
        return []
    return [
        ("action", glob.literal) if glob.literal is not None else ("glob", glob.pattern)
        for glob in statement.action_globs
    ]


def _selector(spec: ResourceSpecifier, critical: frozenset[str]) -> tuple[int, list[Bucket]]:
    """The best buckets for one specifier and how selective they are (0 to 2).

    Among equally strong selectors the deepest segment wins: a flag key narrows more
    than its project's key.
    """
    shape = spec.shape
    best: tuple[int, list[Bucket]] = (0, [("shape", shape)])
    for index, segment in enumerate(spec.segments):
        candidate = _segment_selector(segment, shape, index, critical)
        if candidate is not None and candidate[0] >= best[0]:
            best = candidate
    return best


def _segment_selector(
    segment: SegmentSpecifier, shape: tuple[str, ...], index: int, critical: frozenset[str]
) -> tuple[int, list[Bucket]] | None:
    # Environments are few and many events are environment-less (global), so an
    # environment key is a weak selector; a flag, project or tag key is a strong one.
    strength = 1 if segment.type == "env" else 2
    if segment.key.literal is not None:
        return strength, [("key", shape, index, segment.key.literal)]
    literal_tags = [tag.literal for tag in segment.tags if tag.literal is not None]
    if literal_tags:
        return 2, [("tag", shape, index, literal_tags[0])]
    if segment.critical and critical and segment.key.is_any:
        return 1, [("key", shape, index, name) for name in sorted(critical)]
    return None
