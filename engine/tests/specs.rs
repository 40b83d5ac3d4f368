//! Specs on both backends: versions, conflicts, the size limit, duplicate, delete and
//! isolation between users.

use engine::specs::SpecError;
use engine::testing::{each_backend, two_users};
use model::specs::{BODY_MAX, SpecForm};

fn form(name: &str, body: &str) -> SpecForm {
    SpecForm { name: name.into(), body: body.into() }
}

async fn versions(e: &engine::Engine) -> i64 {
    engine::sqlx::query_scalar("SELECT COUNT(*) FROM spec_versions").fetch_one(&e.store.pool).await.expect("count")
}

#[tokio::test]
async fn a_spec_keeps_every_version_and_refuses_a_stale_save() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let me = &t.member.user;
        let v1 = e.create_spec(me, &form(" Todo app ", "# Todo\n\nAdd and tick items.\n")).await.expect("create");
        assert_eq!((v1.name.as_str(), v1.version, v1.latest, v1.lines, v1.size), ("Todo app", 1, 1, 3, 28));
        let v2 = e
            .update_spec(me, &v1.id, Some(1), &form("Todo app", "# Todo\n\nAdd, tick and delete items.\n"))
            .await
            .expect("v2");
        assert_eq!(v2.latest, 2);
        // Saving what is already there makes no version.
        let same = e.update_spec(me, &v1.id, Some(2), &form("Todo app", &v2.body)).await.expect("same");
        assert_eq!(same.latest, 2);
        // An editor opened at version 1 does not overwrite version 2.
        let stale = e.update_spec(me, &v1.id, Some(1), &form("Todo app", "old tab")).await.expect_err("stale");
        assert!(matches!(stale, SpecError::Conflict { current: 2 }), "{stale:?}");
        let old = e.get_spec(me, &v1.id, Some(1)).await.expect("v1");
        assert_eq!((old.version, old.latest, old.body.as_str()), (1, 2, "# Todo\n\nAdd and tick items.\n"));
        assert_eq!(old.versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2, 1]);

        let list = e.list_specs(me, "", 1).await.expect("list");
        assert_eq!(list.total, 1);
        assert_eq!(list.items[0].preview, "# Todo Add, tick and delete items.");
        assert_eq!(e.list_specs(me, "DELETE", 1).await.expect("search").total, 1);
        assert_eq!(e.list_specs(me, "nothing like it", 1).await.expect("search").total, 0);

        let copy = e.duplicate_spec(me, &v1.id).await.expect("duplicate");
        assert_eq!((copy.name.as_str(), copy.latest, copy.body.as_str()), ("Todo app (copy)", 1, v2.body.as_str()));
        assert_eq!(versions(&e).await, 3);
        e.delete_spec(me, &v1.id).await.expect("delete");
        assert!(matches!(e.get_spec(me, &v1.id, None).await, Err(SpecError::NotFound)));
        assert_eq!(versions(&e).await, 1, "the deleted spec's versions stayed");
    })
    .await;
}

#[tokio::test]
async fn too_big_or_empty_is_refused_by_field_and_nothing_is_stored() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let me = &t.member.user;
        let big = "x".repeat(BODY_MAX + 1);
        let err = e.create_spec(me, &form("Big", &big)).await.expect_err("too big");
        let SpecError::Invalid(f) = err else { panic!("{err:?}") };
        let body = f.get("body").expect("body named");
        assert_eq!((body.rule.as_str(), body.limit), ("too_large", Some(BODY_MAX as u64)));
        let err = e.create_spec(me, &form("", "text")).await.expect_err("no name");
        assert!(matches!(err, SpecError::Invalid(f) if f.get("name").is_some()));
        assert_eq!(e.list_specs(me, "", 1).await.expect("list").total, 0);
        assert_eq!(versions(&e).await, 0);

        let s = e.create_spec(me, &form("Small", "text")).await.expect("create");
        let err = e.update_spec(me, &s.id, None, &form("Small", &big)).await.expect_err("too big");
        assert!(matches!(err, SpecError::Invalid(_)));
        let kept = e.get_spec(me, &s.id, None).await.expect("kept");
        assert_eq!((kept.latest, kept.body.as_str()), (1, "text"));
    })
    .await;
}

#[tokio::test]
async fn another_users_spec_is_not_found_for_anything() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let mine = e.create_spec(&t.member.user, &form("Mine", "secret plans")).await.expect("create");
        let other = &t.admin.user;
        assert!(matches!(e.get_spec(other, &mine.id, None).await, Err(SpecError::NotFound)));
        assert!(matches!(e.get_spec(other, &mine.id, Some(1)).await, Err(SpecError::NotFound)));
        assert!(matches!(e.update_spec(other, &mine.id, None, &form("Theirs", "x")).await, Err(SpecError::NotFound)));
        assert!(matches!(e.duplicate_spec(other, &mine.id).await, Err(SpecError::NotFound)));
        assert!(matches!(e.delete_spec(other, &mine.id).await, Err(SpecError::NotFound)));
        assert_eq!(e.list_specs(other, "", 1).await.expect("list").total, 0);
        let kept = e.get_spec(&t.member.user, &mine.id, None).await.expect("still mine");
        assert_eq!((kept.name.as_str(), kept.latest), ("Mine", 1));
    })
    .await;
}
