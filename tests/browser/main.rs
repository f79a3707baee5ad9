//! The admin panel and the browser client in real headless Chromium.
//!
//! Each test starts its own hub in-process on 127.0.0.1:0, its own
//! `chromedriver` on a free loopback port and one headless Chromium session
//! (see `driver.rs`), opens the demo page and the panel in separate windows,
//! and checks what a person would see, through the DOM hooks documented in
//! `docs/panel.md` and `docs/client.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod actions;
mod alerts;
mod chart;
mod continuity;
mod driver;
mod pages;
mod panel;
mod reconnect;
mod records;
mod rooms;
