"""The subscriptions of `relay listen` processes, and whether each process is still there.

A `relay listen` marks its subscription (`SubscriptionRecord.local_listener`) so that its
deliveries may reach its loopback port, registers it here, and refreshes a heartbeat key
while it runs. Ctrl-C deletes the subscription; a listener killed before it could (SIGKILL,
a closed laptop) leaves it behind, pointing at a port any local process may take next. The
sweep deletes those: registered longer than `LISTENER_TTL_MS` ago, without a heartbeat, and
still marked (a writer may have moved one to a real URL since: then it is theirs, and stays).
"""

from __future__ import annotations

from typing import Final

from relay.store import keys, subscriptions
from relay.store.client import Redis, translate_errors
from relay.store.subscriptions import SubscriptionRecord

# a heartbeat lives this long; `relay listen` refreshes it every third of it
LISTENER_TTL_MS: Final = 60_000


def register(client: Redis, *, sub_id: str, now_ms: int) -> None:
    """Note `sub_id` as a listener's subscription, alive as of now."""
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.zadd(keys.LISTENERS, {sub_id: now_ms})
        pipe.set(keys.listener(sub_id), now_ms, px=LISTENER_TTL_MS)
        pipe.execute()


def beat(client: Redis, *, sub_id: str, now_ms: int) -> bool:
    """Refresh the heartbeat; False when the subscription is gone (deleted meanwhile)."""
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.set(keys.listener(sub_id), now_ms, px=LISTENER_TTL_MS)
        pipe.exists(keys.subscription(sub_id))
        _, exists = pipe.execute()
    return bool(exists)


def forget(client: Redis, *, sub_id: str) -> None:
    """Take `sub_id` off the listeners (its subscription was deleted)."""
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.zrem(keys.LISTENERS, sub_id)
        pipe.delete(keys.listener(sub_id))
        pipe.execute()


def listening_at(client: Redis, *, origin: str) -> list[SubscriptionRecord]:
    """The registered subscriptions marked for the listener at `origin`, oldest first."""
    with translate_errors():
        ids: list[str] = client.zrange(keys.LISTENERS, 0, -1)  # type: ignore[assignment]
    found = (subscriptions.get_subscription(client, sub_id=sub_id) for sub_id in ids)
    return [record for record in found if record and record.local_listener == origin]


def remove_abandoned(client: Redis, *, now_ms: int) -> list[str]:
    """Delete the subscriptions of listeners that stopped without deleting them; their ids."""
    with translate_errors():
        ids: list[str] = client.zrangebyscore(  # type: ignore[assignment]
            keys.LISTENERS, "-inf", now_ms - LISTENER_TTL_MS
        )
        if not ids:
            return []
        pipe = client.pipeline(transaction=False)
        for sub_id in ids:
            pipe.exists(keys.listener(sub_id))
        alive = pipe.execute()
    removed = []
    for sub_id, beating in zip(ids, alive, strict=True):
        if beating:
            continue
        if delete_if_listening(client, sub_id=sub_id):
            removed.append(sub_id)
        forget(client, sub_id=sub_id)
    return removed


def delete_if_listening(client: Redis, *, sub_id: str) -> bool:
    """Delete the subscription if it is still a listener's; one a writer moved to another
    URL (the mark dropped) is an ordinary subscription now and stays. True if deleted."""
    return subscriptions.delete_listener_subscription(client, sub_id=sub_id)
