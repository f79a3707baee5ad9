//! Owns the Lua scripts that keep a node's state hash and its published
//! deltas consistent: each runs atomically in Redis, so a hash read during a
//! resync always matches the `seq` stored beside it. Each touches only one
//! node's keys and channel (one slot on a Redis Cluster); the publish
//! command (`PUBLISH` or `SPUBLISH`) is an argument.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: state, meta. ARGV: publish command, channel, envelope, op
/// (set|del), session id, session json, epoch, seq, now.
pub static PUBLISH_DELTA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[4] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
else
  redis.call('HDEL', KEYS[1], ARGV[5])
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[7], 'seq', ARGV[8], 'heard_at', ARGV[9])
redis.call(ARGV[1], ARGV[2], ARGV[3])
",
    )
});

/// KEYS: state, meta. ARGV: publish command, channel, envelope, epoch,
/// now, then session id / json pairs. (The node joins `{ns}:nodes` in the
/// same round trip, outside the script: the set has a slot of its own on a
/// Redis Cluster.)
pub static FULL_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[4], 'seq', 0, 'heard_at', ARGV[5])
redis.call(ARGV[1], ARGV[2], ARGV[3])
",
    )
});

/// KEYS: meta. ARGV: publish command, channel, envelope, now. Returns 0
/// (and does nothing) when the node's state was removed meanwhile.
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'heard_at', ARGV[4])
redis.call(ARGV[1], ARGV[2], ARGV[3])
return 1
",
    )
});

/// KEYS: state, meta. Returns epoch, seq, heard_at and the flat hash.
pub static READ_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'seq', 'heard_at')
return {meta[1], meta[2], meta[3], redis.call('HGETALL', KEYS[1])}
",
    )
});

/// KEYS: state, meta. ARGV: cutoff. Removes a node's state only when it is
/// still silent, so a node that just came back is kept; returns 1 when it
/// removed it (the caller then takes the node out of `{ns}:nodes`).
pub static REMOVE_DEAD_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local heard = tonumber(redis.call('HGET', KEYS[2], 'heard_at') or '0')
if heard <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
",
    )
});

/// KEYS: state, meta. ARGV: publish command, channel, envelope.
pub static GOODBYE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call(ARGV[1], ARGV[2], ARGV[3])
",
    )
});
