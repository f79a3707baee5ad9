//! Owns the Lua scripts that keep a node's state hash and its published
//! deltas consistent: each runs atomically in Redis, so a hash read during a
//! resync always matches the `seq` stored beside it.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: state, meta. ARGV: channel, envelope, op (set|del), session id,
/// session json, epoch, seq, now.
pub static PUBLISH_DELTA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[3] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
else
  redis.call('HDEL', KEYS[1], ARGV[4])
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[6], 'seq', ARGV[7], 'heard_at', ARGV[8])
redis.call('PUBLISH', ARGV[1], ARGV[2])
",
    )
});

/// KEYS: state, meta, nodes. ARGV: channel, envelope, epoch, node id, now,
/// then session id / json pairs.
pub static FULL_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[3], 'seq', 0, 'heard_at', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[1], ARGV[2])
",
    )
});

/// KEYS: meta, nodes. ARGV: channel, envelope, now, node id. Returns 0
/// (and does nothing) when the node's state was removed meanwhile.
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'heard_at', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], ARGV[2])
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

/// KEYS: state, meta, nodes. ARGV: node id, cutoff. Removes a node's state
/// only when it is still silent, so a node that just came back is kept.
pub static REMOVE_DEAD_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local heard = tonumber(redis.call('HGET', KEYS[2], 'heard_at') or '0')
if heard <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[1])
end
",
    )
});

/// KEYS: state, meta, nodes. ARGV: channel, envelope, node id.
pub static GOODBYE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[1], ARGV[2])
",
    )
});
