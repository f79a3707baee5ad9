//! Owns where traffic goes: the hub's addresses, URLs and the loopback guard.
//!
//! A target is resolved once in the parent and handed to workers as data, so
//! workers never resolve names or decide whether a target is allowed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use url::Url;

/// One hub endpoint, resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// Socket address connections go to.
    pub addr: SocketAddr,
    /// `host[:port]` as given, for the Host header and URLs.
    pub authority: String,
    /// Path prefix the hub is mounted under, without a trailing slash.
    pub base_path: String,
}

/// Everything a worker needs to reach the hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// The node clients connect to.
    pub hub: Endpoint,
    /// The node admin subscribers connect to (often the same).
    pub admin: Endpoint,
    /// Client sockets bind to 127.0.0.1 .. 127.0.0.N before connecting.
    pub source_addrs: u32,
    /// A second node of the same cluster (`rooms`, `resume`), if any.
    #[serde(default)]
    pub peer: Option<Endpoint>,
}

impl Target {
    /// Resolves both URLs and refuses non-loopback ones unless `allow_remote`.
    pub async fn resolve(
        url: &str,
        admin_url: Option<&str>,
        allow_remote: bool,
        source_addrs: u32,
    ) -> Result<Self> {
        let hub = Endpoint::resolve(url, allow_remote).await?;
        let admin = match admin_url {
            Some(admin_url) => Endpoint::resolve(admin_url, allow_remote).await?,
            None => hub.clone(),
        };
        let bind_sources = hub.addr.ip().is_loopback() && hub.addr.is_ipv4();
        let source_addrs = if bind_sources {
            source_addrs.clamp(1, 65_000)
        } else {
            0
        };
        Ok(Self {
            hub,
            admin,
            source_addrs,
            peer: None,
        })
    }

    /// Adds the second node at `url` (same loopback guard).
    pub async fn with_peer(mut self, url: Option<&str>, allow_remote: bool) -> Result<Self> {
        if let Some(url) = url {
            self.peer = Some(Endpoint::resolve(url, allow_remote).await?);
        }
        Ok(self)
    }

    /// The source address client number `index` binds to, if any.
    pub fn source_for(&self, index: u64) -> Option<SocketAddr> {
        if self.source_addrs == 0 {
            return None;
        }
        let offset = u32::try_from(index % u64::from(self.source_addrs)).unwrap_or(0);
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::LOCALHOST) + offset);
        Some(SocketAddr::new(IpAddr::V4(ip), 0))
    }
}

impl Endpoint {
    /// Parses `url` and resolves its host; see [`check_loopback`].
    async fn resolve(url: &str, allow_remote: bool) -> Result<Self> {
        let parsed = Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        if !matches!(parsed.scheme(), "http" | "ws") {
            bail!("unsupported scheme in {url:?}: use http:// or ws:// (no TLS)");
        }
        let host = parsed
            .host_str()
            .with_context(|| format!("no host in {url:?}"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let host_port = format!(
            "{}:{port}",
            host.trim_start_matches('[').trim_end_matches(']')
        );
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host_port.as_str())
            .await
            .with_context(|| format!("cannot resolve {host_port}"))?
            .collect();
        check_loopback(&addrs, url, allow_remote)?;
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .with_context(|| format!("{host_port} resolved to no address"))?;
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            addr,
            authority,
            base_path: parsed.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `ws://authority/base/path?query`.
    pub fn ws_url(&self, path: &str, query: &str) -> String {
        with_query(
            format!("ws://{}{}{path}", self.authority, self.base_path),
            query,
        )
    }

    /// `http://authority/base/path?query`.
    pub fn http_url(&self, path: &str, query: &str) -> String {
        with_query(
            format!("http://{}{}{path}", self.authority, self.base_path),
            query,
        )
    }
}

/// Appends `?query` when it is not empty.
fn with_query(url: String, query: &str) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

/// Refuses any resolved address outside loopback unless explicitly allowed.
fn check_loopback(addrs: &[SocketAddr], url: &str, allow_remote: bool) -> Result<()> {
    if allow_remote {
        return Ok(());
    }
    if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "refusing to load {url}: {} is not a loopback address (pass --allow-remote for your own deployment)",
            remote.ip()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_url_is_accepted() {
        let t = Target::resolve("http://127.0.0.1:9", None, false, 4)
            .await
            .unwrap();
        assert_eq!(t.hub.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(t.hub.ws_url("/ws", "user=a"), "ws://127.0.0.1:9/ws?user=a");
    }

    #[tokio::test]
    async fn non_loopback_url_is_refused_without_allow_remote() {
        let err = Target::resolve("http://10.1.2.3:8080", None, false, 1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--allow-remote"), "{err}");
    }

    #[tokio::test]
    async fn source_addresses_cycle_through_loopback() {
        let t = Target::resolve("ws://127.0.0.1:9/", None, false, 3)
            .await
            .unwrap();
        let ips: Vec<_> = (0..4).map(|i| t.source_for(i).unwrap().ip()).collect();
        assert_eq!(
            ips,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]
                .map(|s| s.parse::<IpAddr>().unwrap())
        );
    }
}
