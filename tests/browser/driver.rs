//! Owns the browser: a `chromedriver` on a free loopback port, one headless
//! Chromium session driven through it over plain HTTP, and bounded waits on
//! the DOM of the current window.
//!
//! Everything started here is stopped when the `Browser` is dropped, also
//! when a test panics or times out: the WebDriver session is deleted (which
//! quits Chromium), `chromedriver` is killed, any Chromium process still
//! using this browser's profile directory is killed by pid, and the profile
//! directory is removed. It knows nothing about the hub or the pages.

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::support::ms;

/// How long any single wait on the browser may take. Generous, because CI
/// machines are slow and Chromium competes with the build for two cores.
pub const WAIT: Duration = Duration::from_secs(10);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const POLL: Duration = Duration::from_millis(50);

/// A headless Chromium session; its windows are the tabs of the tests.
pub struct Browser {
    client: Client,
    /// True once the first window (opened with the session) is in use.
    first_window_used: AtomicBool,
    // Dropped after `client`: stops Chromium and chromedriver.
    _driver: Driver,
}

impl Browser {
    /// Starts `chromedriver` and a fresh headless Chromium behind it.
    pub async fn start() -> Self {
        let mut driver = Driver::spawn().await;
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&driver.profile))
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("chromedriver starts Chromium");
        driver.session = client.session_id().await.expect("session id");
        Self {
            client,
            first_window_used: AtomicBool::new(false),
            _driver: driver,
        }
    }

    /// Opens `url` in a window of its own (the session's first window the
    /// first time) and makes it the current window.
    pub async fn open(&self, url: &str) -> WindowHandle {
        if self.first_window_used.swap(true, Ordering::SeqCst) {
            let window = self.client.new_window(false).await.expect("new window");
            self.switch_to(&window.handle).await;
        }
        self.client.goto(url).await.expect("navigate");
        self.client.window().await.expect("window handle")
    }

    /// Makes `window` the current window.
    pub async fn switch_to(&self, window: &WindowHandle) {
        self.client
            .switch_to_window(window.clone())
            .await
            .expect("switch window");
    }

    /// Resizes the current window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize window");
    }

    /// Runs `script` in the current window; `arguments[i]` are `args`.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}\n{script}"))
    }

    /// The trimmed `textContent` of the first match of `css`, if any.
    pub async fn text(&self, css: &str) -> Option<String> {
        let found = self
            .eval(
                "const el = document.querySelector(arguments[0]);\
                 return el ? el.textContent.trim() : null;",
                vec![json!(css)],
            )
            .await;
        found.as_str().map(str::to_string)
    }

    /// An attribute of the first match of `css`; `None` when there is no
    /// match or no such attribute.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let found = self
            .eval(
                "const el = document.querySelector(arguments[0]);\
                 return el ? el.getAttribute(arguments[1]) : null;",
                vec![json!(css), json!(name)],
            )
            .await;
        found.as_str().map(str::to_string)
    }

    /// Whether `css` matches anything in the current window.
    pub async fn exists(&self, css: &str) -> bool {
        self.eval(
            "return document.querySelector(arguments[0]) !== null;",
            vec![json!(css)],
        )
        .await
            == json!(true)
    }

    /// Waits until the text of `css` is `expected`.
    pub async fn wait_text(&self, css: &str, expected: &str) {
        self.wait_text_within(WAIT, css, expected).await;
    }

    /// Waits up to `limit` until the text of `css` is `expected`.
    pub async fn wait_text_within(&self, limit: Duration, css: &str, expected: &str) {
        let what = format!("{css} to read {expected:?}");
        self.wait_within(limit, &what, || async move {
            let seen = self.text(css).await;
            (seen.as_deref() == Some(expected))
                .then_some(())
                .ok_or(seen)
        })
        .await;
    }

    /// Waits until attribute `name` of `css` is `expected`.
    pub async fn wait_attr(&self, css: &str, name: &str, expected: &str) {
        let what = format!("{css} [{name}] to be {expected:?}");
        self.wait_for(&what, || async move {
            let seen = self.attr(css, name).await;
            (seen.as_deref() == Some(expected))
                .then_some(())
                .ok_or(seen)
        })
        .await;
    }

    /// Waits until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let what = format!("{css} to disappear");
        self.wait_for(&what, || async move {
            if self.exists(css).await {
                Err("still there")
            } else {
                Ok(())
            }
        })
        .await;
    }

    /// Clicks the first match of `css`, waiting until it exists and takes
    /// the click (a real WebDriver click: pointer events, focus and all).
    pub async fn click(&self, css: &str) {
        let what = format!("{css} to take a click");
        self.wait_for(&what, || async move {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .map_err(|e| e.to_string())?;
            element.click().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// A PNG of the current window's viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// Polls `check` every 50 ms until it returns `Ok`, for at most `WAIT`;
    /// the panic names `what` and the last `Err` seen.
    pub async fn wait_for<T, E, F, Fut>(&self, what: &str, check: F) -> T
    where
        E: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.wait_within(WAIT, what, check).await
    }

    /// `wait_for` with a limit of its own.
    pub async fn wait_within<T, E, F, Fut>(&self, limit: Duration, what: &str, mut check: F) -> T
    where
        E: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            match check().await {
                Ok(value) => return value,
                Err(last) => assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; last seen: {last:?}"
                ),
            }
            sleep(POLL).await;
        }
    }
}

/// Checks that `check` holds at every poll for the whole of `window`: the
/// bounded way to assert that something does *not* happen.
pub async fn holds_for<F, Fut>(window: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let end = Instant::now() + window;
    loop {
        if let Err(seen) = check().await {
            panic!("expected {what} to hold, but: {seen}");
        }
        if Instant::now() >= end {
            return;
        }
        sleep(POLL).await;
    }
}

/// Chromium, headless, with a profile of its own.
fn capabilities(profile: &Path) -> Capabilities {
    let args = [
        "--headless".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--no-first-run".to_string(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=1280,900".to_string(),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The `chromedriver` process, its port, and the profile directory of the
/// Chromium it starts.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
    session: Option<String>,
}

impl Driver {
    /// Spawns `chromedriver --port=P` on a free port and waits until it
    /// answers `/status`; tries another port if it lost a race for one.
    async fn spawn() -> Self {
        let profile = fresh_profile_dir();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver is installed (scripts/test installs it)");
            let mut driver = Self {
                child,
                port,
                profile: profile.clone(),
                session: None,
            };
            if driver.answers().await {
                return driver;
            }
            // Dropping `driver` kills it; try again on another port.
        }
        panic!("chromedriver did not start on any of 5 ports");
    }

    /// True once `/status` says ready; false when chromedriver exited.
    async fn answers(&mut self) -> bool {
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(response) = reqwest::get(&url).await {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if body["value"]["ready"] == json!(true) {
                    return true;
                }
            }
            sleep(ms(50)).await;
        }
        false
    }

    /// `DELETE /session/{id}` with a plain blocking request: Chromium quits.
    fn delete_session(&self, session: &str) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(WAIT));
        let request = format!(
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            read_one_response(&mut stream);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.delete_session(&session);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_processes_using(&self.profile);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Reads one HTTP response (headers and a `Content-Length` body): the
/// answer comes once Chromium has quit, and chromedriver may keep the
/// connection open afterwards.
fn read_one_response(stream: &mut TcpStream) {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Kills (by pid) any process whose command line names `profile`: a
/// Chromium left behind when its session could not be deleted.
fn kill_processes_using(profile: &Path) {
    let marker = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let uses_profile = cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes());
        if uses_profile {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A new, empty directory for one Chromium profile.
fn fresh_profile_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "presence-browser-{}-{n}-{}",
        std::process::id(),
        nanos_now()
    ));
    std::fs::create_dir_all(&dir).expect("create the Chromium profile directory");
    dir
}

/// The clock in nanoseconds: differs between runs, so a stale directory
/// left by a killed run is never reused.
fn nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}
