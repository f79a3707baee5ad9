use super::*;

fn config(args: &[&str]) -> Config {
    let mut base = Config::defaults();
    let parsed =
        Config::try_parse_from(std::iter::once("presence-hub").chain(args.iter().copied()))
            .expect("flags parse");
    // Only take over what the flags said; the environment is ignored.
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        match *arg {
            "--idle-after" => base.idle_after = parsed.idle_after,
            "--away-after" => base.away_after = parsed.away_after,
            "--bind" => base.bind.clone_from(&parsed.bind),
            "--insecure-dev" => base.insecure_dev = parsed.insecure_dev,
            "--trusted-proxies" => base.trusted_proxies.clone_from(&parsed.trusted_proxies),
            "--api-rate-limit" => base.api_rate_limit.clone_from(&parsed.api_rate_limit),
            "--resume-grace" => base.resume_grace = parsed.resume_grace,
            "--reconnect-spread" => base.reconnect_spread = parsed.reconnect_spread,
            "--max-session-age" => base.max_session_age = parsed.max_session_age,
            "--series-interval" => base.series_interval = parsed.series_interval,
            "--alerts" => base.alerts = parsed.alerts,
            _ => {}
        }
    }
    base
}

#[test]
fn defaults_are_valid() {
    let settings = Config::defaults().validate().expect("defaults validate");
    assert_eq!(settings.bind.port(), 8080);
    assert_eq!(settings.presence.idle_after, Duration::from_secs(60));
    assert_eq!(settings.api_rate_limit.per_second, 50);
}

#[test]
fn durations_accept_the_documented_units() {
    for text in ["500ms", "2s", "5m", "1h", "30d"] {
        assert!(parse_duration(text).is_ok(), "{text}");
    }
    assert!(parse_duration("soon").is_err());
}

#[test]
fn the_series_interval_is_10s_hidden_and_at_least_100ms() {
    assert_eq!(
        Config::defaults()
            .validate()
            .map(|s| s.series_interval)
            .ok(),
        Some(Duration::from_secs(10))
    );
    let settings = config(&["--series-interval", "200ms"]).validate();
    assert_eq!(
        settings.map(|s| s.series_interval).ok(),
        Some(Duration::from_millis(200))
    );
    let err = config(&["--series-interval", "50ms"])
        .validate()
        .unwrap_err();
    assert!(
        err.to_string().contains("PRESENCE_SERIES_INTERVAL"),
        "{err}"
    );
    let help = <Config as clap::CommandFactory>::command()
        .render_help()
        .to_string();
    assert!(!help.contains("series-interval"), "a test-only setting");
}

#[test]
fn away_after_must_exceed_idle_after() {
    let err = config(&["--idle-after", "5m", "--away-after", "1m"])
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("PRESENCE_AWAY_AFTER"), "{err}");
}

#[test]
fn dev_mode_refuses_a_public_bind_unless_insecure() {
    let err = config(&["--bind", "0.0.0.0:8080"]).validate().unwrap_err();
    assert!(err.to_string().contains("PRESENCE_BIND"), "{err}");
    assert!(
        config(&["--bind", "0.0.0.0:8080", "--insecure-dev", "1"])
            .validate()
            .is_ok()
    );
}

#[test]
fn bad_values_name_their_variable() {
    let err = config(&["--bind", "nowhere"]).validate().unwrap_err();
    assert!(err.to_string().contains("PRESENCE_BIND"));
    let err = config(&["--trusted-proxies", "10.0.0.0/8,banana"])
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("PRESENCE_TRUSTED_PROXIES"));
    let err = config(&["--api-rate-limit", "fast"])
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("PRESENCE_API_RATE_LIMIT"));
}

#[test]
fn the_database_defaults_to_sqlite_alone_and_redis_in_a_cluster() {
    let alone = Config::defaults().validate().unwrap();
    assert!(
        matches!(alone.database, DatabaseUrl::Sqlite(ref p) if p.as_os_str() == "presence-hub.db")
    );
    let mut clustered = Config::defaults();
    clustered.redis_url = Some("redis://127.0.0.1:6379".into());
    assert!(matches!(
        clustered.validate().unwrap().database,
        DatabaseUrl::Memory
    ));
    clustered.database_url = Some("postgres://127.0.0.1/presence".into());
    assert!(matches!(
        clustered.validate().unwrap().database,
        DatabaseUrl::Postgres(_)
    ));
    clustered.database_url = Some("sqlite://node.db".into());
    let err = clustered.validate().unwrap_err();
    assert!(err.to_string().contains("PRESENCE_DATABASE_URL"), "{err}");
    let mut bad = Config::defaults();
    bad.database_url = Some("mysql://hub:secret@db/x".into());
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_DATABASE_URL"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn the_reconnect_spread_fits_in_the_resume_grace() {
    let err = config(&["--resume-grace", "2s", "--reconnect-spread", "3s"])
        .validate()
        .unwrap_err();
    assert!(
        err.to_string().contains("PRESENCE_RECONNECT_SPREAD"),
        "{err}"
    );
    assert!(
        config(&["--resume-grace", "0s", "--reconnect-spread", "3s"])
            .validate()
            .is_ok()
    );
    let parsed = config(&["--max-session-age", "0"]);
    assert!(parsed.max_session_age.is_zero());
}

#[test]
fn webhooks_need_valid_urls_and_a_secret() {
    let mut config = Config::defaults();
    config.webhook_urls = Some("http://127.0.0.1:9000/hook, https://hooks.example/p".into());
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("PRESENCE_WEBHOOK_SECRET"), "{err}");
    config.webhook_secret = Some("s".into());
    let settings = config.validate().expect("valid");
    assert_eq!(settings.webhooks.urls.len(), 2);
    assert_eq!(settings.webhooks.events, EventType::ALL);
    config.webhook_urls = Some("mailto:x@example.com".into());
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("PRESENCE_WEBHOOK_URLS"), "{err}");
    config.webhook_urls = None;
    config.webhook_events = "alert, user.online,alert".into();
    let events = config.validate().unwrap().webhooks.events;
    assert_eq!(events, [EventType::Alert, EventType::UserOnline]);
    config.webhook_queue = 0;
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("PRESENCE_WEBHOOK_QUEUE"), "{err}");
}

#[test]
fn alert_thresholds_must_be_positive() {
    let mut config = Config::defaults();
    config.alert_multi_ip_min = 0;
    let err = config.validate().unwrap_err();
    assert!(
        err.to_string().contains("PRESENCE_ALERT_MULTI_IP_MIN"),
        "{err}"
    );
    let mut config = Config::defaults();
    config.alert_long_session_after = Duration::ZERO;
    let err = config.validate().unwrap_err();
    assert!(
        err.to_string()
            .contains("PRESENCE_ALERT_LONG_SESSION_AFTER"),
        "{err}"
    );
    let defaults = Config::defaults().validate().unwrap().alerts;
    assert_eq!(defaults.long_session_after, Duration::from_secs(12 * 3600));
    assert_eq!(defaults.reconnect_loop_min, 20);
}

#[test]
fn rate_limits_parse_per_unit() {
    assert_eq!(
        "50/s".parse::<RateLimit>(),
        Ok(RateLimit { per_second: 50 })
    );
    assert_eq!(
        "120/m".parse::<RateLimit>(),
        Ok(RateLimit { per_second: 2 })
    );
    assert!("0/s".parse::<RateLimit>().is_err());
}

#[test]
fn a_jwt_secret_shorter_than_32_bytes_is_refused() {
    for short in ["", "s3cret", &"x".repeat(31)] {
        let mut config = Config::defaults();
        config.jwt_secret = Some(short.into());
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_JWT_SECRET"), "{err}");
    }
    let mut config = Config::defaults();
    config.jwt_secret = Some("x".repeat(32).into());
    assert!(config.validate().is_ok());
}

#[test]
fn a_cluster_secret_shorter_than_32_bytes_is_refused() {
    for short in ["", "s3cret", &"x".repeat(31)] {
        let mut config = Config::defaults();
        config.cluster_secret = Some(short.into());
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("PRESENCE_CLUSTER_SECRET"), "{err}");
    }
    let mut config = Config::defaults();
    config.cluster_secret = Some("x".repeat(32).into());
    let settings = config.validate().unwrap();
    assert!(settings.cluster_secret.is_some());
}

/// A P-256 public key PEM file made by `openssl`, in a fresh directory.
fn p256_public_key_file() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("presence-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl").args(args).status();
        assert!(status.unwrap().success(), "openssl {args:?}");
    };
    let (private_arg, public_arg) = (private.to_str().unwrap(), public.to_str().unwrap());
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private_arg,
    ]);
    run(&["pkey", "-in", private_arg, "-pubout", "-out", public_arg]);
    public
}

#[test]
fn a_public_key_or_a_jwks_is_jwt_mode_and_may_bind_any_address() {
    let mut keyed = Config::defaults();
    keyed.bind = "0.0.0.0:0".into();
    keyed.jwt_public_key = Some(p256_public_key_file());
    let settings = keyed.validate().expect("a P-256 key is read");
    assert!(!settings.is_dev_mode());
    assert!(matches!(
        settings.token_keys,
        KeySource::PublicKey(ref key) if key.algorithm == jsonwebtoken::Algorithm::ES256
    ));
    let mut jwks = Config::defaults();
    jwks.bind = "0.0.0.0:0".into();
    jwks.jwks_url = Some("https://idp.example/.well-known/jwks.json".into());
    assert!(!jwks.validate().expect("an https JWKS").is_dev_mode());
    let mut dev = Config::defaults();
    assert!(dev.validate().unwrap().is_dev_mode());
    dev.bind = "0.0.0.0:0".into();
    let err = dev.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_JWKS_URL"), "{err}");
}

#[test]
fn an_empty_key_source_is_an_error_not_dev_mode() {
    let mut config = Config::defaults();
    config.jwt_public_key = Some(std::path::PathBuf::new());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_JWT_PUBLIC_KEY"), "{err}");
    let mut config = Config::defaults();
    config.jwks_url = Some(String::new());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_JWKS_URL"), "{err}");
}

#[test]
fn only_one_key_mode_may_be_set() {
    let secret = || Some("x".repeat(32).into());
    let key = || Some(p256_public_key_file());
    let url = || Some("http://127.0.0.1:1/jwks".to_string());
    let modes = [
        (secret(), key(), None, "PRESENCE_JWT_PUBLIC_KEY"),
        (secret(), None, url(), "PRESENCE_JWKS_URL"),
        (None, key(), url(), "PRESENCE_JWKS_URL"),
        (secret(), key(), url(), "PRESENCE_JWT_PUBLIC_KEY"),
    ];
    for (jwt_secret, jwt_public_key, jwks_url, named) in modes {
        let mut config = Config::defaults();
        config.jwt_secret = jwt_secret;
        config.jwt_public_key = jwt_public_key;
        config.jwks_url = jwks_url;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with(named), "{err}");
        assert!(err.contains("only one of"), "{err}");
    }
}

#[test]
fn a_jwks_url_must_be_http_and_its_intervals_ordered() {
    for url in [
        "ftp://idp.example/jwks",
        "file:///etc/jwks.json",
        "idp.example/jwks",
        " ",
    ] {
        let mut config = Config::defaults();
        config.jwks_url = Some(url.into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("PRESENCE_JWKS_URL"), "{url}: {err}");
    }
    let mut config = Config::defaults();
    config.jwks_url = Some("http://user:pw@idp.example/jwks".into());
    config.jwks_refresh_interval = Duration::from_secs(10);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_JWKS_REFRESH_INTERVAL"), "{err}");
    config.jwks_refresh_interval = Duration::from_secs(60);
    config.jwks_min_refresh_interval = Duration::from_millis(10);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_JWKS_MIN_REFRESH_INTERVAL"), "{err}");
}

#[test]
fn origins_are_normalised() {
    assert_eq!(
        parse_origins(
            "PRESENCE_ALLOWED_ORIGINS",
            Some("https://A.example/, http://b.example")
        )
        .unwrap(),
        Some(vec![
            "https://a.example".to_string(),
            "http://b.example".to_string()
        ])
    );
    assert_eq!(
        parse_origins("PRESENCE_ALLOWED_ORIGINS", None).unwrap(),
        None
    );
}

#[test]
fn an_origin_list_naming_no_origin_is_an_error() {
    for bad in [",,,", " , ", "", "app.example"] {
        let err = parse_origins("PRESENCE_ALLOWED_ORIGINS", Some(bad)).unwrap_err();
        assert!(
            err.to_string().contains("PRESENCE_ALLOWED_ORIGINS"),
            "{err}"
        );
    }
}

#[test]
fn alerts_are_on_unless_switched_off() {
    assert!(Config::defaults().validate().unwrap().alerts.enabled);
    for off in ["off", "false", "0", "no"] {
        let settings = config(&["--alerts", off]).validate().unwrap();
        assert!(!settings.alerts.enabled, "--alerts {off}");
    }
    assert!(
        config(&["--alerts", "on"])
            .validate()
            .unwrap()
            .alerts
            .enabled
    );
    let bad = Config::try_parse_from(["presence-hub", "--alerts", "sometimes"]);
    assert!(bad.is_err());
}

#[test]
fn tls_takes_both_files_or_neither() {
    let mut config = Config::defaults();
    assert_eq!(config.validate().unwrap().tls, None);
    config.tls_cert = Some("chain.pem".into());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_TLS_KEY"), "{err}");
    config.tls_key = Some("key.pem".into());
    let files = config.validate().unwrap().tls;
    let expected = TlsFiles {
        cert: "chain.pem".into(),
        key: "key.pem".into(),
    };
    assert_eq!(files, Some(expected));
    config.tls_cert = None;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_TLS_CERT"), "{err}");
    config.tls_cert = Some("".into());
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("PRESENCE_TLS_CERT") && err.contains("empty"),
        "{err}"
    );
}

#[test]
fn a_redis_cluster_url_is_accepted_and_a_broken_one_is_refused_without_its_password() {
    let mut clustered = config(&[]);
    clustered.redis_url = Some("redis+cluster://10.0.0.1:7000,10.0.0.2:7000".into());
    assert!(clustered.validate().is_ok());
    let mut broken = config(&[]);
    broken.redis_url = Some("redis+cluster://user:s3cret@/".into());
    let err = broken.validate().unwrap_err().to_string();
    assert!(err.contains("PRESENCE_REDIS_URL"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("user:***@"), "{err}");
}
