//! Files and directories only the server's own user may open. The data dir holds the
//! signing and sealing keys, the database and the blobs; the other accounts on the host
//! (and the services running under them) have no business reading any of it.
//!
//! The process umask is left alone: it is the whole process's, and its children's. Instead
//! what Agentry creates is created or set owner-only, and what it finds open is closed and
//! named in a warning.

use std::io;
use std::path::Path;

/// A directory only the owner may list or enter.
pub const DIR: u32 = 0o700;
/// A file only the owner may read or write.
pub const FILE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only, or makes an existing one so.
pub fn dir(dir: &Path) -> io::Result<()> {
    create(dir)?;
    set(dir, DIR)
}

/// Creates `dir` owner-only; fails when anything is there already (so nobody else can have
/// made it first, or put a link to somewhere else in its place).
pub fn new_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR);
    b.create(dir)
}

/// Makes `path` owner-only (`mode` is [`FILE`] or [`DIR`]) when group or others may open
/// it. A missing path is no error; a symbolic link is left alone (its target is not ours
/// to change).
pub fn set(path: &Path, mode: u32) -> io::Result<()> {
    match open_mode(path) {
        Ok(Some(_)) => chmod(path, mode),
        Ok(None) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The data dir, created if missing, and everything directly in it made owner-only. What
/// was open to group or others is named in a warning with the mode it had. A mode that
/// cannot be changed (a directory owned by another user, a file system without modes) is
/// warned about, not fatal: the server ran with it before.
pub fn data_dir(path: &Path) -> io::Result<()> {
    create(path)?;
    close_noisily(path, DIR);
    for e in std::fs::read_dir(path)?.flatten() {
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        close_noisily(&e.path(), if is_dir { DIR } else { FILE });
    }
    Ok(())
}

fn create(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR);
    b.create(dir)
}

fn close_noisily(path: &Path, mode: u32) {
    let Ok(Some(had)) = open_mode(path) else { return };
    let had = format!("{had:04o}");
    match chmod(path, mode) {
        Ok(()) => tracing::warn!(path = %path.display(), mode = had, "was open to other users; made owner-only"),
        Err(e) => {
            tracing::warn!(path = %path.display(), mode = had, error = %e, "is open to other users; could not change it")
        }
    }
}

/// The permission bits of `path` when group or others have any; `None` for a symbolic link.
#[cfg(unix)]
fn open_mode(path: &Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    let mode = meta.permissions().mode() & 0o777;
    Ok((!meta.file_type().is_symlink() && mode & 0o077 != 0).then_some(mode))
}

#[cfg(not(unix))]
fn open_mode(_: &Path) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn chmod(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn the_data_dir_and_what_is_in_it_are_closed_but_stricter_modes_kept() {
        let root = crate::testing::temp_dir("owner-only");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let open = root.join("agentry.db");
        let strict = root.join("backup.key");
        let sub = root.join("blobs");
        std::fs::write(&open, b"x").expect("w");
        std::fs::write(&strict, b"x").expect("w");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::set_permissions(&strict, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        data_dir(&root).expect("data dir");
        assert_eq!((mode(&root), mode(&open), mode(&strict), mode(&sub)), (0o700, 0o600, 0o400, 0o700));

        let fresh = root.join("a/b");
        dir(&fresh).expect("fresh");
        assert_eq!((mode(&root.join("a")), mode(&fresh)), (0o700, 0o700));
        assert!(new_dir(&fresh).is_err(), "an existing directory is not taken over");
        let _ = std::fs::remove_dir_all(root);
    }
}
