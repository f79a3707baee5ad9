//! Owns rendering the hub's own values as JSON text, in one place, so a
//! failure (which the types make impossible in practice) is logged the same
//! way everywhere instead of panicking.

use serde::Serialize;

/// The JSON text of `value`; `null` (and an error log) if it cannot be
/// serialised.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| {
        tracing::error!(error = %err, "serialising a value to JSON failed");
        "null".to_string()
    })
}
