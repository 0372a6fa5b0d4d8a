"""The Redis keyspace, in one place.

Every key follows the seed's ``cb:{type}:{id}`` pattern. Scripts never build keys: the Python side
builds them here and passes them in KEYS. In a namespace (required on Redis Cluster) the prefix is
``cb:{ns}``: ``cb:{ns}:task:{id}`` and so on, every key of the namespace in the hash slot of ``ns``.
An ``{id}`` part is the id with ``%``, ``:``, ``{`` and ``}`` percent-encoded (``key_id``), so no
id can address another record's key (batch ``b:lock`` is ``cb:batch:b%3Alock``, never batch b's lock).

| key                               | type   | holds                                                 |
|-----------------------------------|--------|-------------------------------------------------------|
| cb:task:{id}                      | HASH   | one task (fields below)                               |
| cb:queue:tasks:pending            | ZSET   | default queue's pending tasks, (100-priority)*1e13 + seq |
| cb:queue:{name}:pending           | ZSET   | pending tasks of queue {name} (same score)            |
| cb:queue:{q}:backlog              | ZSET   | fairness: pending tasks waiting behind their key's turn (lex) |
| cb:queue:{q}:fair                 | HASH   | fairness key -> its tasks in the pending ZSET (turns) |
| cb:queue:{q}:config               | HASH   | paused, concurrencyLimit, rateLimit, rateWindowMs, ... |
| cb:queue:{q}:rate                 | ZSET   | claims in the sliding rate window, score = time (ms)  |
| cb:queue:{q}:all                  | ZSET   | every task of the queue, score seq (ListTasks.queue)  |
| cb:queues                         | ZSET   | queue names, score = when first used or configured    |
| cb:queues:counts                  | HASH   | "{queue}|{status}" -> tasks in_progress/completed/failed |
| cb:queue:tasks:due                | ZSET   | SCHEDULED tasks of every queue, score run_at (ms)     |
| cb:queue:tasks:leases             | ZSET   | IN_PROGRESS tasks with a timeout, score lease deadline |
| cb:queue:instance:{id}            | ZSET   | tasks an instance holds (IN_PROGRESS), score seq      |
| cb:tasks:all                      | ZSET   | every task, score seq (ListTasks without filter)      |
| cb:tasks:status:{status}          | ZSET   | tasks per status, score seq (ListTasks, counts)       |
| cb:tasks:finished:{status}        | ZSET   | completed/failed/cancelled tasks, score finish time   |
| cb:seq:tasks                      | STRING | creation counter: FIFO order within a priority        |
| cb:stream:tasks                   | STREAM | task events, trimmed with MAXLEN ~ retention          |
| cb:instance:{id}                  | HASH   | an instance's registration and liveness               |
| cb:instances:liveness             | ZSET   | instance ids by last-seen time (ms)                   |
| cb:leader:current                 | STRING | the leader's id, a lease that expires after the TTL   |
| cb:instances:offline              | ZSET   | instances declared offline, score = when (24 h kept)  |
| cb:gossip:health / cb:gossip:counts | HASH | instance -> healthy/unhealthy; total, healthy counts  |
| cb:partition:detected             | STRING | set (5 min) while a partition is suspected            |
| cb:state:global                   | HASH   | version (only grows), data, timestamp                 |
| cb:metrics:queues                 | HASH   | waitTotalMs, waitCount, completed, failed counters    |
| cb:metrics:throughput             | HASH   | 120-slot ring: second % 120 -> "<second>:<finished>"  |
| cb:metrics:global                 | HASH   | the last AGGREGATE_GLOBAL_METRICS snapshot            |
| cb:metrics:lua                    | HASH   | {script}:calls, {script}:totalMs, {script}:errors     |
| cb:stream:system                  | STREAM | fleet events (instance.failed, batch.completed, ...)  |
| cb:batch:{id}:lock / cb:batch:{id} | STRING / HASH | a batch's holder (TTL) / its progress (24 h) |
| cb:quorum:{id}:votes / cb:quorum:{id} | HASH | votes per instance / the decision (24 h)          |
| cb:lease:{name}                   | STRING | a replica's lease on a background job (TTL)           |
| cb:idempotency:{sha256}           | STRING | the task an idempotency key created (PX = its window) |
| cb:schema:version                 | STRING | the key-schema version the data was written with      |
| cb:hook:config:{tool}             | STRING | the tool's hook configuration (JSON, validated)       |
| cb:hook:circuit:{tool}            | HASH   | circuit breaker: state, openedAt, until, errors       |
| cb:hook:rate:{instance}[:{tool}]:{window} | STRING | calls in one rate-limit window (TTL 2 windows) |
| cb:hook:errors:{tool}             | ZSET   | errors in the sliding window (TTL one window)         |
| cb:hook:log:{tool}                | LIST   | last 100 results, newest first (TTL 24 h)             |
| cb:hook:stats:{tool}              | HASH   | validated, rateLimited, circuitDenied, executions, errors |

Queues: the default queue's keys are ``cb:queue:tasks:{part}`` (its pending queue keeps the seed's
key, so existing data and tools keep working); queue {name}'s are ``cb:queue:{name}:{part}``. Queue
names are 1..64 of ``[A-Za-z0-9._-]`` (no ``:``, ``{`` or ``}``), and ``tasks`` and ``instance`` are
reserved (they would alias the default queue's and the held sets' keys). Everything stays under the
prefix, so a namespace's queues share its hash slot on Redis Cluster. The due and leases indexes
are one for all queues (promotion and lease expiry do not depend on the queue; each task goes back
to its own queue's keys).

Task hash fields: id, seq, queue (absent = default), fairKey (the JSON text of metadata.fairness_key,
when set at creation), text, priority, status (pending|in_progress|completed|failed|scheduled|
cancelled), runAt (while scheduled), assignedTo,
attempts, createdAt, updatedAt, assignedAt, completedAt (all times epoch ms), result (JSON text),
error, releaseReason, deny (JSON array of instance ids), failovers, and one ``m:{key}`` field per
metadata key holding that key's JSON-encoded value (so metadata merges key by key with HSET, inside
the script).

Instance hash fields: id, roles (JSON array), maxTasks, metadata (JSON), status (active|offline),
lastSeen, registeredAt, offlineAt, tasksCompleted, tasksFailed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

TASK_STATUSES = ("pending", "in_progress", "completed", "failed")
# The statuses of the task lifecycle (issue 17): each has its status index like the four above.
# Kept apart because the fleet-wide counts (GetSystemState, GetSystemHealth) report the four.
LIFECYCLE_STATUSES = ("scheduled", "cancelled")
ALL_TASK_STATUSES = TASK_STATUSES + LIFECYCLE_STATUSES
FINISHED_STATUSES = ("completed", "failed", "cancelled")
# Bumped whenever the layout below changes incompatibly; a server refuses a Redis holding another.
KEY_SCHEMA_VERSION = 1


_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
QUEUE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEFAULT_QUEUE = "default"
# Names whose keys would alias other keys: cb:queue:tasks:* is the default queue's, and
# cb:queue:instance:{id} an instance's held set.
RESERVED_QUEUE_NAMES = frozenset({"tasks", "instance"})


# What an id may not carry into a key as it is: ':' separates a key's parts (an id "b:lock" would
# otherwise be batch b's lock key), '{' and '}' would make a Redis Cluster hash tag, '%' is the
# escape itself. Ids without these (almost all) keep their keys unchanged.
_KEY_UNSAFE = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})


def key_id(value: str) -> str:
    """A user-chosen id (task, instance, batch, decision, tool, ...) as one part of a key: encoded
    so that no id can ever address another record's key, whatever it contains. Every id that goes
    into a key goes through here."""
    return value.translate(_KEY_UNSAFE)


def namespace_prefix(key_prefix: str, namespace: str | None) -> str:
    """The prefix of every key: ``cb`` standalone, ``cb:{ns}`` in a namespace.

    The braces are a Redis Cluster hash tag: every key of a namespace hashes to the same slot, so
    each script's keys live on one shard (no CROSSSLOT), and different namespaces spread over the
    cluster. User input always comes after the prefix, so it cannot move a key to another slot.
    """
    if namespace is None:
        return key_prefix
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} must be 1 to 64 letters, digits, '_', '.' or '-'")
    return f"{key_prefix}:{{{namespace}}}"


@dataclass(frozen=True, slots=True)
class Keyspace:
    """Builds every key under one prefix (``cb`` by default, ``cb:{ns}`` in a namespace)."""

    prefix: str = "cb"

    @classmethod
    def of(cls, key_prefix: str, namespace: str | None) -> Keyspace:
        return cls(namespace_prefix(key_prefix, namespace))

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:task:{key_id(task_id)}"

    @property
    def pending(self) -> str:
        return f"{self.prefix}:queue:tasks:pending"

    def queue(self, name: str, part: str) -> str:
        """A key of queue `name` (pending, backlog, fair, config, rate, all). The name must be
        valid (``QUEUE_NAME``, not reserved): it is used as it is."""
        if not QUEUE_NAME.fullmatch(name) or name in RESERVED_QUEUE_NAMES:
            raise ValueError(f"invalid queue name {name!r}")
        base = "tasks" if name == DEFAULT_QUEUE else name
        return f"{self.prefix}:queue:{base}:{part}"

    @property
    def queues(self) -> str:
        return f"{self.prefix}:queues"

    @property
    def queue_counts(self) -> str:
        return f"{self.prefix}:queues:counts"

    def finished(self, status: str) -> str:
        """COMPLETED / FAILED / CANCELLED tasks by finish time (ms): retention reads the oldest."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"not a finished status: {status!r}")
        return f"{self.prefix}:tasks:finished:{status}"

    @property
    def due(self) -> str:
        return f"{self.prefix}:queue:tasks:due"

    @property
    def leases(self) -> str:
        return f"{self.prefix}:queue:tasks:leases"

    def held(self, instance_id: str) -> str:
        return f"{self.prefix}:queue:instance:{key_id(instance_id)}"

    @property
    def all_tasks(self) -> str:
        return f"{self.prefix}:tasks:all"

    def status_index(self, status: str) -> str:
        if status not in ALL_TASK_STATUSES:
            raise ValueError(f"unknown task status {status!r}")
        return f"{self.prefix}:tasks:status:{status}"

    @property
    def task_seq(self) -> str:
        return f"{self.prefix}:seq:tasks"

    @property
    def events(self) -> str:
        return f"{self.prefix}:stream:tasks"

    def instance(self, instance_id: str) -> str:
        return f"{self.prefix}:instance:{key_id(instance_id)}"

    @property
    def liveness(self) -> str:
        return f"{self.prefix}:instances:liveness"

    @property
    def leader(self) -> str:
        return f"{self.prefix}:leader:current"

    @property
    def offline(self) -> str:
        return f"{self.prefix}:instances:offline"

    @property
    def gossip(self) -> str:
        return f"{self.prefix}:gossip:health"

    @property
    def gossip_counts(self) -> str:
        return f"{self.prefix}:gossip:counts"

    @property
    def partition(self) -> str:
        return f"{self.prefix}:partition:detected"

    @property
    def global_state(self) -> str:
        return f"{self.prefix}:state:global"

    @property
    def queue_metrics(self) -> str:
        return f"{self.prefix}:metrics:queues"

    @property
    def throughput(self) -> str:
        return f"{self.prefix}:metrics:throughput"

    @property
    def global_metrics(self) -> str:
        return f"{self.prefix}:metrics:global"

    @property
    def script_metrics(self) -> str:
        return f"{self.prefix}:metrics:lua"

    @property
    def system_events(self) -> str:
        return f"{self.prefix}:stream:system"

    def batch_lock(self, batch_id: str) -> str:
        return f"{self.prefix}:batch:{key_id(batch_id)}:lock"

    def batch(self, batch_id: str) -> str:
        return f"{self.prefix}:batch:{key_id(batch_id)}"

    def quorum_votes(self, decision_id: str) -> str:
        return f"{self.prefix}:quorum:{key_id(decision_id)}:votes"

    def quorum(self, decision_id: str) -> str:
        return f"{self.prefix}:quorum:{key_id(decision_id)}"

    def idempotency(self, key: str, queue: str = "default") -> str:
        """The record of an idempotency key: hashed, so no client string can address another key."""
        digest = hashlib.sha256(f"{queue}\0{key}".encode()).hexdigest()
        return f"{self.prefix}:idempotency:{digest}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{key_id(name)}"

    def hook_circuit(self, tool: str) -> str:
        return f"{self.prefix}:hook:circuit:{key_id(tool)}"

    def hook_config(self, tool: str) -> str:
        return f"{self.prefix}:hook:config:{key_id(tool)}"

    def hook_rate(self, instance_id: str, window: int, tool: str | None = None) -> str:
        scope = f"{key_id(instance_id)}:{key_id(tool)}" if tool else key_id(instance_id)
        return f"{self.prefix}:hook:rate:{scope}:{window}"

    def hook_stats(self, tool: str) -> str:
        return f"{self.prefix}:hook:stats:{key_id(tool)}"

    def hook_errors(self, tool: str) -> str:
        return f"{self.prefix}:hook:errors:{key_id(tool)}"

    def hook_log(self, tool: str) -> str:
        return f"{self.prefix}:hook:log:{key_id(tool)}"

    @property
    def schema_version(self) -> str:
        return f"{self.prefix}:schema:version"
