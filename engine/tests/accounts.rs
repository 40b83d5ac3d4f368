//! The store suite for accounts and sessions: every test runs on SQLite and, when
//! `TEST_DATABASE_URL` is set, on PostgreSQL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use engine::auth::ClientInfo;
use engine::testing::{self, PASSWORD, backends, each_backend, sign_up, two_users};
use engine::{AccountError, AuthError, Engine};

fn client() -> ClientInfo {
    ClientInfo { ip: "10.0.0.7".into(), user_agent: "test".into() }
}

#[tokio::test]
async fn first_user_is_admin_and_second_is_member() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        assert!(t.admin.user.is_admin);
        assert!(!t.member.user.is_admin);
        assert_eq!(t.member.user.display_name, "bob", "display name defaults to the email's name");
    })
    .await;
}

#[tokio::test]
async fn simultaneous_first_registrations_make_exactly_one_admin() {
    each_backend(|e| async move {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let e = e.clone();
                tokio::spawn(async move { e.register(&format!("u{i}@example.com"), PASSWORD, "", &client()).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("register");
        }
        let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1")
            .fetch_one(&e.store.pool)
            .await
            .expect("count");
        assert_eq!(admins, 1, "exactly one of eight simultaneous first accounts is admin");
    })
    .await;
}

#[tokio::test]
async fn duplicate_email_is_a_field_error_whatever_the_case() {
    each_backend(|e| async move {
        sign_up(&e, "ann@example.com").await;
        match e.register("ANN@example.com", PASSWORD, "", &client()).await {
            Err(AccountError::Invalid(f)) => assert_eq!(f.get("email").map(|x| x.rule.as_str()), Some("taken")),
            other => panic!("expected a field error, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn bad_registration_input_names_every_field_and_stores_nothing() {
    each_backend(|e| async move {
        match e.register("not-an-email", "short", &"x".repeat(81), &client()).await {
            Err(AccountError::Invalid(f)) => {
                let fields: Vec<_> = f.0.iter().map(|x| x.field.as_str()).collect();
                assert_eq!(fields, ["email", "password", "display_name"]);
                assert_eq!(f.get("display_name").and_then(|x| x.limit), Some(80));
            }
            other => panic!("expected field errors, got {other:?}"),
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&e.store.pool).await.expect("count");
        assert_eq!(n, 0);
    })
    .await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    each_backend(|e| async move {
        sign_up(&e, "ann@example.com").await;
        assert!(matches!(
            e.login("ann@example.com", "wrong password", &client()).await,
            Err(AccountError::WrongCredentials)
        ));
        assert!(matches!(
            e.login("nobody@example.com", "wrong password", &client()).await,
            Err(AccountError::WrongCredentials)
        ));
        let (me, _) = e.login("Ann@Example.com", PASSWORD, &client()).await.expect("login");
        assert_eq!(me.email, "ann@example.com");
    })
    .await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while() {
    each_backend(|e| async move {
        sign_up(&e, "ann@example.com").await;
        for _ in 0..5 {
            let other_ip = ClientInfo { ip: format!("10.1.{}.1", rand_octet()), user_agent: String::new() };
            let _ = e.login("ann@example.com", "nope nope", &other_ip).await;
        }
        // Even the right password from a fresh address waits: the account is the key.
        match e
            .login("ann@example.com", PASSWORD, &ClientInfo { ip: "10.9.9.9".into(), user_agent: String::new() })
            .await
        {
            Err(AccountError::TooManyAttempts(wait)) => assert!(wait.secs() > 0),
            other => panic!("expected too many attempts, got {other:?}"),
        }
    })
    .await;
}

fn rand_octet() -> u8 {
    (uuid::Uuid::now_v7().as_bytes()[15]) % 250
}

#[tokio::test]
async fn tampered_expired_unsigned_and_foreign_tokens_are_refused() {
    each_backend(|e| async move {
        let u = sign_up(&e, "ann@example.com").await;
        let good = u.tokens.access.clone();
        assert!(e.authenticate(&good).await.is_ok());

        // Tampered: flip the subject in the payload, keep the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        claims["sub"] = "someone-else".into();
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
        assert!(matches!(e.authenticate(&tampered).await, Err(AuthError::Unauthenticated)));

        // alg=none with no signature.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{header}.{}.", parts[1]);
        assert!(matches!(e.authenticate(&unsigned).await, Err(AuthError::Unauthenticated)));

        // Signed with another key.
        let foreign = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32]),
        )
        .expect("encode");
        assert!(matches!(e.authenticate(&foreign).await, Err(AuthError::Unauthenticated)));

        // Expired: the right key, but exp in the past.
        let key = secrecy::ExposeSecret::expose_secret(&e.keys.jwt).to_vec();
        let mut old =
            serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        old["exp"] = 1_000.into();
        let expired =
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &old, &jsonwebtoken::EncodingKey::from_secret(&key))
                .expect("encode");
        assert!(matches!(e.authenticate(&expired).await, Err(AuthError::Unauthenticated)));
    })
    .await;
}

/// Signed with the right key, yet not an access token of this server: another issuer or
/// audience, another `typ`, or not valid yet. Each is refused.
#[tokio::test]
async fn right_key_but_wrong_issuer_audience_type_or_future_nbf_is_refused() {
    each_backend(|e| async move {
        let u = sign_up(&e, "ann@example.com").await;
        let parts: Vec<&str> = u.tokens.access.split('.').collect();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        let key = secrecy::ExposeSecret::expose_secret(&e.keys.jwt).to_vec();
        let sign = |typ: &str, claims: &serde_json::Value| {
            let header = jsonwebtoken::Header { typ: Some(typ.to_owned()), ..Default::default() };
            jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(&key)).expect("encode")
        };
        // The same claims re-signed as they were: accepted, so the cases below fail for
        // the one thing each changes.
        assert!(e.authenticate(&sign("at+jwt", &claims)).await.is_ok(), "a faithful copy is accepted");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let cases: [(&str, &str, serde_json::Value); 6] = [
            ("wrong issuer", "at+jwt", serde_json::json!({ "iss": "someone-else" })),
            ("wrong audience", "at+jwt", serde_json::json!({ "aud": "another-app" })),
            ("not valid yet", "at+jwt", serde_json::json!({ "nbf": now + 600 })),
            ("no nbf", "at+jwt", serde_json::json!({ "nbf": null })),
            ("no issuer", "at+jwt", serde_json::json!({ "iss": null })),
            ("a plain JWT, not an access token", "JWT", serde_json::json!({})),
        ];
        for (what, typ, change) in cases {
            let mut c = claims.clone();
            for (k, v) in change.as_object().expect("object") {
                if v.is_null() {
                    c.as_object_mut().expect("object").remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            assert!(
                matches!(e.authenticate(&sign(typ, &c)).await, Err(AuthError::Unauthenticated)),
                "{what}: accepted"
            );
        }
    })
    .await;
}

/// A token once accepted is remembered as verified; that must not outlive its `exp`, nor
/// its session.
#[tokio::test]
async fn an_accepted_token_stops_counting_when_it_expires_or_its_session_ends() {
    for b in backends() {
        let mut s = testing::settings(b).await;
        s.auth.access_ttl_secs = 1;
        let e = Engine::start(s).await.expect("engine");
        let u = sign_up(&e, "ann@example.com").await;
        assert!(e.authenticate(&u.tokens.access).await.is_ok(), "{b:?}: fresh token");
        // `exp` is whole seconds: one second from issue is past within two.
        tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
        assert!(
            matches!(e.authenticate(&u.tokens.access).await, Err(AuthError::Unauthenticated)),
            "{b:?}: an expired token was accepted from memory"
        );

        let (_, tokens) = e.login("ann@example.com", PASSWORD, &client()).await.expect("login");
        let me = e.authenticate(&tokens.access).await.expect("fresh login");
        e.logout(&me).await.expect("logout");
        assert!(e.authenticate(&tokens.access).await.is_err(), "{b:?}: a logged-out session's token was accepted");
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    for b in backends() {
        let mut s = testing::settings(b).await;
        s.auth.refresh_reuse_grace_secs = 0;
        let e = Engine::start(s).await.expect("start");
        let u = sign_up(&e, "ann@example.com").await;
        let first = u.tokens.refresh.clone().expect("refresh token");
        let (_, second) = e.refresh(&first, &client()).await.expect("rotate");
        let second_refresh = second.refresh.clone().expect("new refresh token");
        assert_ne!(first, second_refresh);
        assert!(e.authenticate(&second.access).await.is_ok());

        // The spent token comes back: theft. The family dies, new tokens included.
        assert!(matches!(e.refresh(&first, &client()).await, Err(AuthError::Reused)));
        assert!(e.refresh(&second_refresh, &client()).await.is_err());
        assert!(e.authenticate(&second.access).await.is_err());
        // Another sign-in is a different family and still works.
        assert!(e.login("ann@example.com", PASSWORD, &client()).await.is_ok());
    }
}

#[tokio::test]
async fn reuse_within_the_grace_window_only_renews_access() {
    each_backend(|e| async move {
        let u = sign_up(&e, "ann@example.com").await;
        let first = u.tokens.refresh.clone().expect("refresh token");
        let (_, second) = e.refresh(&first, &client()).await.expect("rotate");
        let (_, raced) = e.refresh(&first, &client()).await.expect("a racing tab is not a thief");
        assert!(raced.refresh.is_none());
        assert!(e.authenticate(&raced.access).await.is_ok());
        assert!(e.refresh(&second.refresh.expect("r"), &client()).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    each_backend(|e| async move {
        let u = sign_up(&e, "ann@example.com").await;
        e.logout(&u.user).await.expect("logout");
        assert!(matches!(e.authenticate(&u.tokens.access).await, Err(AuthError::Revoked)));
        assert!(e.refresh(&u.tokens.refresh.clone().expect("r"), &client()).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn password_change_checks_the_old_one_and_ends_other_sessions() {
    each_backend(|e| async move {
        let u = sign_up(&e, "ann@example.com").await;
        let (_, other_device) = e.login("ann@example.com", PASSWORD, &client()).await.expect("login");
        match e.change_password(&u.user, "not it at all", "a brand new passphrase", &client()).await {
            Err(AccountError::Invalid(f)) => {
                assert_eq!(f.get("current_password").map(|x| x.rule.as_str()), Some("wrong_password"))
            }
            other => panic!("expected wrong current password, got {other:?}"),
        }
        let fresh = e.change_password(&u.user, PASSWORD, "a brand new passphrase", &client()).await.expect("change");
        assert!(e.authenticate(&other_device.access).await.is_err(), "other sessions end");
        assert!(e.authenticate(&u.tokens.access).await.is_err(), "the old session too");
        assert!(e.authenticate(&fresh.access).await.is_ok(), "the device that changed it stays in");
        assert!(matches!(e.login("ann@example.com", PASSWORD, &client()).await, Err(AccountError::WrongCredentials)));
        assert!(e.login("ann@example.com", "a brand new passphrase", &client()).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn disabled_user_is_locked_out_at_once() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        e.set_user_disabled(&t.admin.user, &t.member.user.id, true, &client()).await.expect("disable");
        assert!(e.authenticate(&t.member.tokens.access).await.is_err());
        assert!(e.refresh(&t.member.tokens.refresh.clone().expect("r"), &client()).await.is_err());
        assert!(matches!(e.login(&t.member.email, PASSWORD, &client()).await, Err(AccountError::Disabled)));
        e.set_user_disabled(&t.admin.user, &t.member.user.id, false, &client()).await.expect("enable");
        assert!(e.login(&t.member.email, PASSWORD, &client()).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn members_cannot_use_admin_controls() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        assert!(matches!(e.list_users(&t.member.user).await, Err(AccountError::AdminOnly)));
        assert!(matches!(
            e.set_user_disabled(&t.member.user, &t.admin.user.id, true, &client()).await,
            Err(AccountError::AdminOnly)
        ));
        assert!(matches!(
            e.set_registration_open(&t.member.user, false, &client()).await,
            Err(AccountError::AdminOnly)
        ));
        assert!(e.authenticate(&t.admin.tokens.access).await.is_ok(), "nothing changed");
        // An admin cannot lock themself out either.
        assert!(e.set_user_disabled(&t.admin.user, &t.admin.user.id, true, &client()).await.is_err());
        // An unknown id is "not found".
        assert!(matches!(
            e.set_user_disabled(&t.admin.user, "no-such-user", true, &client()).await,
            Err(AccountError::NotFound)
        ));
    })
    .await;
}

#[tokio::test]
async fn closed_registration_refuses_newcomers_but_not_the_first_account() {
    for b in backends() {
        let mut s = testing::settings(b).await;
        s.registration_open = false;
        let e = Engine::start(s).await.expect("start");
        let admin = sign_up(&e, "ada@example.com").await;
        assert!(admin.user.is_admin, "the first account can always be created");
        assert!(matches!(
            e.register("bob@example.com", PASSWORD, "", &client()).await,
            Err(AccountError::RegistrationClosed)
        ));
        e.set_registration_open(&admin.user, true, &client()).await.expect("open");
        assert!(e.register("bob@example.com", PASSWORD, "", &client()).await.is_ok());
        e.set_registration_open(&admin.user, false, &client()).await.expect("close again (upsert)");
        assert!(!e.registration_open().await.expect("read"));
    }
}

#[tokio::test]
async fn profile_updates_touch_only_their_owner() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        // Authenticate first, so the session cache (SQLite) holds the old name.
        assert_eq!(e.authenticate(&t.member.tokens.access).await.expect("auth").display_name, "bob");
        let me = e.update_profile(&t.member.user, "  Bob B.  ", "en").await.expect("update");
        assert_eq!((me.display_name.as_str(), me.locale.as_str()), ("Bob B.", "en"));
        assert_eq!(e.authenticate(&t.member.tokens.access).await.expect("auth").display_name, "Bob B.");
        assert_eq!(e.me(&t.admin.user.id).await.expect("me").display_name, "ada");
        match e.update_profile(&t.member.user, "", "xx").await {
            Err(AccountError::Invalid(f)) => assert_eq!(f.0.len(), 2),
            other => panic!("expected field errors, got {other:?}"),
        }
        assert_eq!(
            e.me(&t.member.user.id).await.expect("me").display_name,
            "Bob B.",
            "a failed update changes nothing"
        );
    })
    .await;
}

#[tokio::test]
async fn migrations_run_twice_without_harm_and_audit_records_actions() {
    each_backend(|e| async move {
        e.store.migrate().await.expect("second migrate");
        let t = two_users(&e).await;
        e.set_user_disabled(&t.admin.user, &t.member.user.id, true, &client()).await.expect("disable");
        let recent = engine::audit::recent(&e, 10).await.expect("audit");
        assert!(recent.iter().any(|(actor, action, target)| actor.as_deref() == Some(t.admin.user.id.as_str())
            && action == "user.disabled"
            && *target == t.member.user.id));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_database_scheme_names_the_accepted_ones() {
    let err = engine::Store::connect("mysql://localhost/x").await.err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("sqlite:") && text.contains("postgres://"), "{text}");
}

/// Refresh tokens that can no longer be used are deleted: expired ones and those rotated
/// long ago; the current one stays and still works.
#[tokio::test]
async fn spent_and_expired_refresh_tokens_are_pruned() {
    each_backend(|e| async move {
        let u = sign_up(&e, "ann@example.com").await;
        let mut refresh = u.tokens.refresh.clone().expect("refresh token");
        for _ in 0..5 {
            let (_, t) = e.refresh(&refresh, &client()).await.expect("rotate");
            refresh = t.refresh.expect("new refresh token");
        }
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM refresh_tokens")
                .fetch_one(&e.store.pool)
                .await
                .expect("n")
        };
        assert_eq!(count().await, 6);
        // Five were rotated; pretend it was eight days ago.
        let long_ago = engine::infra::store::now_ms() - 8 * 24 * 3600 * 1000;
        sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE rotated_at IS NOT NULL")
            .bind(long_ago)
            .execute(&e.store.pool)
            .await
            .expect("age");
        e.prune().await;
        assert_eq!(count().await, 1, "only the current token is left");
        e.refresh(&refresh, &client()).await.expect("the current token still works");
    })
    .await;
}
