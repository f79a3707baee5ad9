//! A real HTTP/1.1 webhook receiver on 127.0.0.1:0, written on raw TCP so a
//! test can make it answer anything: a status, a `Retry-After`, a redirect,
//! garbage, a huge body, or nothing for a while. It records every request.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status, empty body.
    Status(u16),
    /// This status with extra headers.
    With(u16, Vec<(&'static str, String)>),
    /// Bytes that are not HTTP.
    Garbage,
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// Wait, then answer 200.
    Slow(Duration),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }

    /// The event types of the batch, in order.
    pub fn types(&self) -> Vec<String> {
        self.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    /// True when `X-Presence-Signature` is right for `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let header = &self.headers["x-presence-signature"];
        let Some((t, v1)) = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
        else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{}", self.body).as_bytes());
        hex::encode(mac.finalize().into_bytes()) == v1
    }
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Answers `answers` in turn, then 200 to everything.
    pub async fn start(answers: Vec<Answer>) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), answers).await
    }

    /// The same on `addr`: a receiver that comes up where a hub already
    /// sends (port 0: any free port).
    pub async fn start_on(addr: SocketAddr, answers: Vec<Answer>) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let (r, a) = (received.clone(), answers.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, a) = (r.clone(), a.clone());
                tokio::spawn(async move { serve(stream, r, a).await });
            }
        });
        Self {
            addr,
            received,
            answers,
            task,
        }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Every event received so far, in order, across requests.
    pub fn events(&self) -> Vec<Value> {
        self.received()
            .iter()
            .flat_map(|r| r.json()["events"].as_array().unwrap().clone())
            .collect()
    }

    /// Queues more answers.
    pub fn answer(&self, answer: Answer) {
        self.answers.lock().unwrap().push_back(answer);
    }
}

async fn serve(
    mut stream: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + 4 + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end + 4..head_end + 4 + length]).to_string();
    received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let answer = answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200));
    let reply = match answer {
        Answer::Status(status) => response(status, &[], 0),
        Answer::With(status, extra) => response(status, &extra, 0),
        Answer::Garbage => b"this is not HTTP at all\r\n\r\n".to_vec(),
        Answer::Huge(bytes) => {
            let mut reply = response(200, &[], bytes);
            reply.extend(std::iter::repeat_n(b'x', bytes));
            reply
        }
        Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            response(200, &[], 0)
        }
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}

fn response(status: u16, extra: &[(&'static str, String)], length: usize) -> Vec<u8> {
    let mut text =
        format!("HTTP/1.1 {status} Answer\r\nContent-Length: {length}\r\nConnection: close\r\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
