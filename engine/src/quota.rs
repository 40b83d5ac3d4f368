//! The storage quota: the bytes of blobs a user keeps, in every domain that keeps files
//! (skill versions, chat attachments), against `limits.storage_per_user_bytes`.

/// What `owner` keeps now.
pub(crate) async fn used(conn: &mut sqlx::AnyConnection, owner: &str) -> Result<u64, sqlx::Error> {
    let skills = crate::skills::bytes_kept(&mut *conn, owner).await?;
    let attachments = crate::chat::attachments::bytes_kept(&mut *conn, owner).await?;
    Ok(skills + attachments)
}
