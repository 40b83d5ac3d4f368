//! Provider connections on both backends: ownership, sharing, and secrets that never leave.

use engine::Engine;
use engine::providers::ProviderError;
use engine::testing::{each_backend, two_users};
use model::providers::{ProviderDraft, ProviderForm};
use secrecy::ExposeSecret;

const KEY: &str = "sk-test-0123456789abcdef";

fn draft(name: &str, shared: bool) -> ProviderDraft {
    ProviderForm {
        name: name.into(),
        kind: "openai".into(),
        base_url: "https://api.example.com/v1".into(),
        api_key: KEY.into(),
        headers: "X-Org: secret-org-value".into(),
        models: "gpt-x, gpt-y".into(),
        shared: shared.then(|| "on".into()),
    }
    .parse()
    .expect("valid draft")
}

async fn count(e: &Engine) -> i64 {
    engine::sqlx::query_scalar("SELECT COUNT(*) FROM providers").fetch_one(&e.store.pool).await.expect("count")
}

#[tokio::test]
async fn members_see_their_own_and_shared_connections_only() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let shared = e.create_provider(&t.admin.user, draft("Team OpenAI", true)).await.expect("shared");
        let admins = e.create_provider(&t.admin.user, draft("Ada's own", false)).await.expect("admin personal");
        let mine = e.create_provider(&t.member.user, draft("Bob's own", false)).await.expect("member personal");
        let names: Vec<_> = e.list_providers(&t.member.user).await.expect("list").into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["Team OpenAI", "Bob's own"]);
        assert!(e.get_provider(&t.member.user, &shared.id).await.is_ok_and(|p| p.shared && !p.editable));
        assert!(mine.editable && !mine.shared);
        // Personal connections are private, even from an admin.
        assert!(matches!(e.get_provider(&t.member.user, &admins.id).await, Err(ProviderError::NotFound)));
        assert!(matches!(e.get_provider(&t.admin.user, &mine.id).await, Err(ProviderError::NotFound)));
    })
    .await;
}

#[tokio::test]
async fn another_users_connection_is_not_found_for_every_operation_and_unchanged() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = e.create_provider(&t.admin.user, draft("Ada's own", false)).await.expect("create");
        let bob = &t.member.user;
        assert!(matches!(e.get_provider(bob, &p.id).await, Err(ProviderError::NotFound)));
        assert!(matches!(e.update_provider(bob, &p.id, draft("pwned", false)).await, Err(ProviderError::NotFound)));
        assert!(matches!(e.delete_provider(bob, &p.id).await, Err(ProviderError::NotFound)));
        assert!(matches!(e.provider_secrets(bob, &p.id).await, Err(ProviderError::NotFound)));
        let still = e.get_provider(&t.admin.user, &p.id).await.expect("still there");
        assert_eq!(still, p);
    })
    .await;
}

#[tokio::test]
async fn only_admins_make_or_change_shared_connections() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        assert!(matches!(
            e.create_provider(&t.member.user, draft("Mine for all", true)).await,
            Err(ProviderError::AdminOnly)
        ));
        assert_eq!(count(&e).await, 0, "nothing half-written");
        let shared = e.create_provider(&t.admin.user, draft("Team", true)).await.expect("shared");
        assert!(matches!(
            e.update_provider(&t.member.user, &shared.id, draft("x", true)).await,
            Err(ProviderError::AdminOnly)
        ));
        assert!(matches!(e.delete_provider(&t.member.user, &shared.id).await, Err(ProviderError::AdminOnly)));
        assert!(e.delete_provider(&t.admin.user, &shared.id).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn keys_and_header_values_never_appear_in_views_or_the_store() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = e.create_provider(&t.member.user, draft("Bob's", false)).await.expect("create");
        assert_eq!(p.api_key_hint, "••••cdef");
        assert_eq!(p.header_names, ["X-Org"]);
        let json = serde_json::to_string(&e.list_providers(&t.member.user).await.expect("list")).expect("json");
        assert!(!json.contains(KEY) && !json.contains("secret-org-value"), "{json}");
        let stored: (String, String) =
            engine::sqlx::query_as("SELECT api_key_sealed, headers_sealed FROM providers WHERE id = $1")
                .bind(&p.id)
                .fetch_one(&e.store.pool)
                .await
                .expect("row");
        assert!(!stored.0.contains("sk-test") && !stored.1.contains("secret-org"));
        let s = e.provider_secrets(&t.member.user, &p.id).await.expect("secrets");
        assert_eq!(s.api_key.as_ref().map(|k| k.expose_secret().to_owned()).as_deref(), Some(KEY));
        assert_eq!(s.headers[0].1.expose_secret(), "secret-org-value");
    })
    .await;
}

#[tokio::test]
async fn a_changed_url_drops_the_stored_key_unless_given_again() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let p = e.create_provider(&t.member.user, draft("Bob's", false)).await.expect("create");
        // Same URL, no key given: the key stays.
        let mut same = draft("Bob's renamed", false);
        same.api_key = None;
        same.headers = None;
        let kept = e.update_provider(&t.member.user, &p.id, same).await.expect("update");
        assert_eq!((kept.name.as_str(), kept.api_key_hint.as_str()), ("Bob's renamed", "••••cdef"));
        // New URL, no key given: the key and headers are gone, not sent elsewhere.
        let mut moved = draft("Bob's renamed", false);
        moved.base_url = "https://attacker.example/v1".into();
        moved.api_key = None;
        moved.headers = None;
        let v = e.update_provider(&t.member.user, &p.id, moved).await.expect("update");
        assert!(v.api_key_hint.is_empty() && v.header_names.is_empty());
        let s = e.provider_secrets(&t.member.user, &p.id).await.expect("secrets");
        assert!(s.api_key.is_none() && s.headers.is_empty());
    })
    .await;
}

#[tokio::test]
async fn names_are_unique_per_owner_and_a_clash_names_the_field() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        e.create_provider(&t.member.user, draft("Same", false)).await.expect("first");
        match e.create_provider(&t.member.user, draft("Same", false)).await {
            Err(ProviderError::Invalid(f)) => assert_eq!(f.get("name").map(|x| x.rule.as_str()), Some("taken")),
            other => panic!("expected a name clash, got {other:?}"),
        }
        assert!(e.create_provider(&t.admin.user, draft("Same", false)).await.is_ok(), "another owner may use it");
        assert_eq!(count(&e).await, 2);
    })
    .await;
}
