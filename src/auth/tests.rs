//! Unit tests of `auth`: claims, dev mode, rooms, and each key mode.

use super::*;
use jsonwebtoken::{EncodingKey, Header, encode};

fn token(secret: &str, sub: &str, exp_offset: i64, role: Option<&str>) -> String {
    let exp = chrono::Utc::now().timestamp() + exp_offset;
    let claims = serde_json::json!({"sub": sub, "exp": exp, "role": role, "name": "Alice"});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn jwt_mode() -> Authenticator {
    Authenticator::new(&KeySource::Secret("s3cret".into()))
}

fn signed(claims: &serde_json::Value, header: &Header) -> String {
    encode(header, claims, &EncodingKey::from_secret(b"s3cret")).unwrap()
}

fn claims_with(extra: serde_json::Value) -> serde_json::Value {
    let exp = chrono::Utc::now().timestamp() + 60;
    let mut claims = serde_json::json!({"sub": "alice", "exp": exp});
    if let (Some(claims), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    claims
}

fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.client(Some(token), &DevIdentity::default())
}

#[test]
fn a_token_is_refused_before_its_nbf() {
    let later = chrono::Utc::now().timestamp() + 30;
    let early = signed(
        &claims_with(serde_json::json!({"nbf": later})),
        &Header::default(),
    );
    assert_eq!(check(&jwt_mode(), &early).unwrap_err(), AuthError::Invalid);
    let now = chrono::Utc::now().timestamp() - 1;
    let ready = signed(
        &claims_with(serde_json::json!({"nbf": now})),
        &Header::default(),
    );
    assert!(check(&jwt_mode(), &ready).is_ok());
}

#[test]
fn a_critical_header_extension_is_refused() {
    // The header is built by hand: `crit` is not a field of `Header`.
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let plain = signed(&claims_with(serde_json::json!({})), &Header::default());
    let payload = plain.split('.').nth(1).unwrap();
    let header = b64(&serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}));
    let signing_input = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(b"s3cret"),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let token = format!("{signing_input}.{signature}");
    assert_eq!(check(&jwt_mode(), &token).unwrap_err(), AuthError::Invalid);
    assert!(check(&jwt_mode(), &plain).is_ok());
}

#[test]
fn aud_is_checked_only_when_an_audience_is_configured() {
    let for_other = signed(
        &claims_with(serde_json::json!({"aud": "other-app"})),
        &Header::default(),
    );
    assert!(
        check(&jwt_mode(), &for_other).is_ok(),
        "no audience configured"
    );
    let strict = jwt_mode().expecting(Some("https://idp.example"), Some("presence"));
    assert_eq!(check(&strict, &for_other).unwrap_err(), AuthError::Invalid);
    let ours = serde_json::json!({"aud": ["presence", "x"], "iss": "https://idp.example"});
    assert!(check(&strict, &signed(&claims_with(ours), &Header::default())).is_ok());
    let foreign_issuer = serde_json::json!({"aud": "presence", "iss": "https://evil.example"});
    let foreign = signed(&claims_with(foreign_issuer), &Header::default());
    assert_eq!(check(&strict, &foreign).unwrap_err(), AuthError::Invalid);
}

#[test]
fn a_valid_token_names_the_user() {
    let principal = jwt_mode()
        .client(
            Some(&token("s3cret", "alice", 60, None)),
            &DevIdentity::default(),
        )
        .unwrap();
    assert_eq!(principal.user_id.as_str(), "alice");
    assert_eq!(principal.name.as_deref(), Some("Alice"));
    assert_eq!(principal.role, Role::Client);
}

#[test]
fn email_and_team_claims_are_kept() {
    let exp = chrono::Utc::now().timestamp() + 60;
    let claims =
        serde_json::json!({"sub": "alice", "exp": exp, "email": "a@x.test", "team": "ops"});
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret("s3cret".as_bytes()),
    )
    .unwrap();
    let principal = jwt_mode()
        .client(Some(&token), &DevIdentity::default())
        .unwrap();
    assert_eq!(principal.email.as_deref(), Some("a@x.test"));
    assert_eq!(principal.team.as_deref(), Some("ops"));
}

#[test]
fn bad_tokens_are_told_apart() {
    let auth = jwt_mode();
    let none = DevIdentity::default();
    assert_eq!(auth.client(None, &none), Err(AuthError::Missing));
    assert_eq!(auth.client(Some("garbage"), &none), Err(AuthError::Invalid));
    assert_eq!(
        auth.client(Some(&token("other", "alice", 60, None)), &none),
        Err(AuthError::Invalid)
    );
    assert_eq!(
        auth.client(Some(&token("s3cret", "alice", -60, None)), &none),
        Err(AuthError::Expired)
    );
}

#[test]
fn admin_routes_need_the_admin_role() {
    let auth = jwt_mode();
    assert_eq!(
        auth.admin(Some(&token("s3cret", "bob", 60, None))),
        Err(AuthError::NotAdmin)
    );
    assert!(
        auth.admin(Some(&token("s3cret", "bob", 60, Some("admin"))))
            .is_ok()
    );
}

#[test]
fn the_rooms_claim_opens_exact_names_and_prefixes_but_no_other_org() {
    let principal = Principal {
        user_id: UserId::parse("alice").unwrap(),
        name: None,
        org: Some("acme".into()),
        role: Role::Client,
        rooms: RoomGrant::Listed(vec!["doc:1".into(), "team/*".into(), "*".into()]),
        expires_at: None,
        email: None,
        team: None,
    };
    let room = |name: &str| RoomName::parse(name).unwrap();
    assert!(principal.may_enter(&room("doc:1")));
    assert!(principal.may_enter(&room("team/eng")));
    assert!(
        principal.may_enter(&room("anything")),
        "* opens explicit rooms"
    );
    assert!(principal.may_enter(&room("org:acme")), "its own org");
    assert!(
        !principal.may_enter(&room("org:other")),
        "never another org"
    );
    let narrow = Principal {
        rooms: RoomGrant::Listed(vec!["doc:1".into(), "team/*".into(), "org:*".into()]),
        ..principal
    };
    assert!(!narrow.may_enter(&room("doc:12")));
    assert!(narrow.may_enter(&room("team/")));
    assert!(
        !narrow.may_enter(&room("org:other")),
        "claims never match org names"
    );
    assert!(!narrow.may_enter(&room("teams")));
}

#[test]
fn dev_mode_takes_the_user_from_the_query() {
    let auth = Authenticator::new(&KeySource::Dev);
    let ok = auth
        .client(
            None,
            &DevIdentity {
                user: Some("alice"),
                name: None,
                org: Some("acme"),
                email: Some("alice@acme.test"),
                team: None,
            },
        )
        .unwrap();
    assert_eq!(ok.org.as_deref(), Some("acme"));
    assert_eq!(ok.email.as_deref(), Some("alice@acme.test"));
    assert_eq!(ok.team, None);
    assert_eq!(
        auth.client(None, &DevIdentity::default()),
        Err(AuthError::BadDevUser)
    );
    let long = "x".repeat(129);
    assert_eq!(
        auth.client(
            None,
            &DevIdentity {
                user: Some(&long),
                ..Default::default()
            }
        ),
        Err(AuthError::BadDevUser)
    );
    assert!(auth.admin(None).is_ok());
}
