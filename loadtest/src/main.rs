//! Owns the `presence-loadtest` binary: simulated clients that measure a hub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    println!("presence-loadtest: scenarios arrive in a later change");
}
