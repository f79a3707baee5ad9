//! Owns what `PRESENCE_DATABASE_URL` may say and which records store it
//! names: `sqlite://PATH` (the default, `sqlite://presence-hub.db`),
//! `postgres://...` or `postgresql://...`, and `memory:` (v1 behaviour).
//! Pure: parsing only, no I/O.

use std::path::PathBuf;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// The default when `PRESENCE_DATABASE_URL` is unset on a single node.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://presence-hub.db";

/// Where records are kept.
#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    /// In memory (plus `PRESENCE_HISTORY_FILE` when set); in cluster mode,
    /// in Redis.
    Memory,
    /// One SQLite file, relative to the working directory unless absolute.
    Sqlite(PathBuf),
    /// A PostgreSQL server (the URL may hold a password, so it is secret).
    Postgres(SecretString),
}

impl DatabaseUrl {
    /// The store's name, as in logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// True for `sqlite://` and `postgres://`: stores behind a database.
    pub fn is_database(&self) -> bool {
        !matches!(self, Self::Memory)
    }

    /// The PostgreSQL URL, for connecting.
    pub fn postgres_url(&self) -> Option<&str> {
        match self {
            Self::Postgres(url) => Some(url.expose_secret()),
            _ => None,
        }
    }
}

/// `text` with any password hidden, for error messages.
pub fn redacted(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => {
            format!("{}://***{}", &text[..scheme], &text[at..])
        }
        _ => text.to_string(),
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "memory:" {
            return Ok(Self::Memory);
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://presence-hub.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            // Syntax only; whether the server answers is checked at start.
            sqlx::postgres::PgConnectOptions::from_str(text)
                .map_err(|err| format!("not a usable PostgreSQL URL: {err}"))?;
            return Ok(Self::Postgres(SecretString::from(text.to_string())));
        }
        Err("expected sqlite://PATH, postgres://..., postgresql://... or memory:".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_parses() {
        assert!(matches!("memory:".parse(), Ok(DatabaseUrl::Memory)));
        match DEFAULT_DATABASE_URL.parse() {
            Ok(DatabaseUrl::Sqlite(path)) => assert_eq!(path, PathBuf::from("presence-hub.db")),
            other => panic!("{other:?}"),
        }
        match "sqlite:///var/lib/presence/hub.db".parse() {
            Ok(DatabaseUrl::Sqlite(path)) => {
                assert_eq!(path, PathBuf::from("/var/lib/presence/hub.db"));
            }
            other => panic!("{other:?}"),
        }
        for url in [
            "postgres://hub:secret@127.0.0.1:5432/presence",
            "postgresql://127.0.0.1/presence",
        ] {
            let parsed: DatabaseUrl = url.parse().unwrap();
            assert_eq!(parsed.postgres_url(), Some(url));
            assert!(
                !format!("{parsed:?}").contains("secret"),
                "no password in Debug"
            );
        }
    }

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redacted("postgres://hub:secret@db:5432/x"),
            "postgres://***@db:5432/x"
        );
        assert_eq!(redacted("sqlite://a@b.db"), "sqlite://***@b.db");
        assert_eq!(redacted("memory:"), "memory:");
    }

    #[test]
    fn anything_else_is_refused() {
        for url in ["", "sqlite://", "mysql://x", "memory", "redis://127.0.0.1"] {
            assert!(url.parse::<DatabaseUrl>().is_err(), "{url:?}");
        }
    }
}
