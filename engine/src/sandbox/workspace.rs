//! A build's workspace, as the workspace tools see it from the server's side: read, write,
//! edit (an exact string replaced), list and search files, every path confined to the
//! workspace. Commands run inside the sandbox; these run in the server, so a path is
//! checked component by component: relative, no `..`, and no symbolic link anywhere on the
//! way (a command may have left one pointing at the server's own files). Nothing runs in
//! the workspace while a tool does (a run calls its tools one at a time, and a command's
//! processes are gone when it returns), so what is checked is what is opened.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The most a read gives back, and the most one write or edit may hold.
pub const READ_MAX: usize = 256 * 1024;
pub const WRITE_MAX: usize = 1024 * 1024;
/// The most entries a listing and matches a search give back.
pub const LIST_MAX: usize = 1000;
pub const SEARCH_MAX: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkspaceError {
    #[error("path {0:?} is outside the workspace: give a path relative to the workspace, without `..`")]
    Outside(String),
    #[error("path {0:?} goes through a symbolic link, which the workspace tools do not follow")]
    Link(String),
    #[error("{0:?} does not exist")]
    Missing(String),
    #[error("{0:?} is a directory")]
    Directory(String),
    #[error("{0:?} is not a text file")]
    NotText(String),
    #[error("{path:?}: {what} is {size} bytes, over the limit of {limit}")]
    TooBig { path: String, what: &'static str, size: usize, limit: usize },
    #[error("{0:?}: the text to replace was not found; read the file and copy it exactly")]
    NotFound(String),
    #[error("{path:?}: the text to replace is there {count} times; give more of it, or replace all")]
    Ambiguous { path: String, count: usize },
    #[error("{0}")]
    Io(String),
}

fn io(path: &str, e: std::io::Error) -> WorkspaceError {
    WorkspaceError::Io(format!("{path}: {e}"))
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Changed,
}

pub struct Workspace {
    root: PathBuf,
    /// The owner files made here get (the workspace's own, when the server runs as root).
    owner: Option<u32>,
}

impl Workspace {
    pub fn new(root: PathBuf) -> Self {
        use std::os::unix::fs::MetadataExt;
        let mine = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        let theirs = std::fs::metadata(&root).map(|m| m.uid()).ok();
        let owner = theirs.filter(|t| Some(*t) != mine);
        Self { root, owner }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` as a path in the workspace: relative, without `..`, through no link. The
    /// workspace itself is `""` or `"."`.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, WorkspaceError> {
        let trimmed = rel.trim();
        let rel_path = Path::new(trimmed.strip_prefix("/workspace/").unwrap_or(trimmed));
        let mut path = self.root.clone();
        for part in rel_path.components() {
            match part {
                Component::Normal(p) => {
                    path.push(p);
                    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                        return Err(WorkspaceError::Link(rel.to_owned()));
                    }
                }
                Component::CurDir => {}
                _ => return Err(WorkspaceError::Outside(rel.to_owned())),
            }
        }
        if trimmed == "/workspace" {
            return Ok(self.root.clone());
        }
        Ok(path)
    }

    fn own(&self, path: &Path) {
        if let Some(uid) = self.owner {
            let _ = std::os::unix::fs::lchown(path, Some(uid), Some(uid));
        }
    }

    /// A text file, from line `offset` (1-based), at most `limit` lines, each numbered.
    pub fn read(&self, rel: &str, offset: usize, limit: usize) -> Result<String, WorkspaceError> {
        let path = self.resolve(rel)?;
        let meta = std::fs::metadata(&path).map_err(|_| WorkspaceError::Missing(rel.to_owned()))?;
        if meta.is_dir() {
            return Err(WorkspaceError::Directory(rel.to_owned()));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(8 * READ_MAX as u64).read_to_end(&mut bytes))
            .map_err(|e| io(rel, e))?;
        let text = String::from_utf8(bytes).map_err(|_| WorkspaceError::NotText(rel.to_owned()))?;
        let mut out = String::new();
        let first = offset.max(1);
        let total = text.lines().count();
        for (i, line) in text.lines().enumerate().skip(first - 1).take(limit.max(1)) {
            if out.len() + line.len() > READ_MAX {
                out.push_str(&format!("[cut at {READ_MAX} bytes: read on from line {}]\n", i + 1));
                return Ok(out);
            }
            out.push_str(&format!("{:>6}\t{line}\n", i + 1));
        }
        let shown_to = (first - 1 + limit.max(1)).min(total);
        if shown_to < total {
            out.push_str(&format!("[{} more lines: read on from line {}]\n", total - shown_to, shown_to + 1));
        }
        Ok(out)
    }

    /// Writes `content` to `rel`, making the directories on the way.
    pub fn write(&self, rel: &str, content: &str) -> Result<Written, WorkspaceError> {
        if content.len() > WRITE_MAX {
            return Err(WorkspaceError::TooBig {
                path: rel.to_owned(),
                what: "the content",
                size: content.len(),
                limit: WRITE_MAX,
            });
        }
        let path = self.resolve(rel)?;
        if path == self.root {
            return Err(WorkspaceError::Directory(rel.to_owned()));
        }
        if path.is_dir() {
            return Err(WorkspaceError::Directory(rel.to_owned()));
        }
        let existed = path.exists();
        if let Some(parent) = path.parent() {
            let mut made = Vec::new();
            let mut p = parent.to_path_buf();
            while !p.exists() && p.starts_with(&self.root) {
                made.push(p.clone());
                if !p.pop() {
                    break;
                }
            }
            std::fs::create_dir_all(parent).map_err(|e| io(rel, e))?;
            for d in made {
                self.own(&d);
            }
        }
        std::fs::write(&path, content).map_err(|e| io(rel, e))?;
        self.own(&path);
        Ok(if existed { Written::Changed } else { Written::Created })
    }

    /// Replaces `old` with `new` in `rel`: `old` must be there exactly once, or at least once
    /// with `all`. Returns how many were replaced.
    pub fn edit(&self, rel: &str, old: &str, new: &str, all: bool) -> Result<usize, WorkspaceError> {
        let path = self.resolve(rel)?;
        if path.is_dir() {
            return Err(WorkspaceError::Directory(rel.to_owned()));
        }
        let bytes = std::fs::read(&path).map_err(|_| WorkspaceError::Missing(rel.to_owned()))?;
        let text = String::from_utf8(bytes).map_err(|_| WorkspaceError::NotText(rel.to_owned()))?;
        if old.is_empty() {
            return Err(WorkspaceError::NotFound(rel.to_owned()));
        }
        let count = text.matches(old).count();
        match count {
            0 => return Err(WorkspaceError::NotFound(rel.to_owned())),
            1 => {}
            n if !all => return Err(WorkspaceError::Ambiguous { path: rel.to_owned(), count: n }),
            _ => {}
        }
        let changed = text.replace(old, new);
        if changed.len() > WRITE_MAX {
            return Err(WorkspaceError::TooBig {
                path: rel.to_owned(),
                what: "the file after the edit",
                size: changed.len(),
                limit: WRITE_MAX,
            });
        }
        std::fs::write(&path, changed).map_err(|e| io(rel, e))?;
        Ok(count)
    }

    /// Files and directories under `rel`, `depth` levels down, sorted, directories ending
    /// in `/`, files with their size.
    pub fn list(&self, rel: &str, depth: usize) -> Result<String, WorkspaceError> {
        let start = self.resolve(rel)?;
        if !start.is_dir() {
            return Err(if start.exists() {
                WorkspaceError::Io(format!("{rel:?} is a file, not a directory"))
            } else {
                WorkspaceError::Missing(rel.to_owned())
            });
        }
        let mut lines = Vec::new();
        let mut more = false;
        walk(&start, &start, depth.clamp(1, 10), &mut |rel_path, meta| {
            if lines.len() >= LIST_MAX {
                more = true;
                return false;
            }
            let shown = rel_path.to_string_lossy();
            lines.push(if meta.is_dir() { format!("{shown}/") } else { format!("{shown}  ({} bytes)", meta.len()) });
            true
        });
        lines.sort();
        if lines.is_empty() {
            lines.push("(empty)".into());
        }
        if more {
            lines.push(format!("[cut at {LIST_MAX} entries: list a directory further down]"));
        }
        Ok(lines.join("\n"))
    }

    /// Lines containing `needle` (as written, not a pattern) in the text files under `rel`.
    pub fn search(&self, needle: &str, rel: &str) -> Result<String, WorkspaceError> {
        let start = self.resolve(rel)?;
        if needle.is_empty() {
            return Err(WorkspaceError::Io("give the text to search for".into()));
        }
        let mut hits = Vec::new();
        let mut more = false;
        let mut visit = |rel_path: &Path, meta: &std::fs::Metadata, full: &Path| {
            if !meta.is_file() || meta.len() > 4 * WRITE_MAX as u64 {
                return true;
            }
            let Ok(text) = std::fs::read_to_string(full) else { return true };
            for (i, line) in text.lines().enumerate() {
                if line.contains(needle) {
                    if hits.len() >= SEARCH_MAX {
                        more = true;
                        return false;
                    }
                    let mut end = line.len().min(300);
                    while !line.is_char_boundary(end) {
                        end -= 1;
                    }
                    let line = &line[..end];
                    hits.push(format!("{}:{}: {line}", rel_path.display(), i + 1));
                }
            }
            true
        };
        if start.is_file() {
            let meta = std::fs::metadata(&start).map_err(|e| io(rel, e))?;
            visit(Path::new(rel.trim()), &meta, &start);
        } else if start.is_dir() {
            walk_full(&start, &start, 20, &mut visit);
        } else {
            return Err(WorkspaceError::Missing(rel.to_owned()));
        }
        if hits.is_empty() {
            return Ok(format!("No line contains {needle:?}."));
        }
        if more {
            hits.push(format!("[cut at {SEARCH_MAX} matches: search a narrower directory]"));
        }
        Ok(hits.join("\n"))
    }

    /// Bytes and files in the workspace (links not followed).
    pub fn usage(&self) -> (u64, u64) {
        let (mut bytes, mut files) = (0, 0);
        walk(&self.root, &self.root, 64, &mut |_, meta| {
            if meta.is_file() {
                bytes += meta.len();
                files += 1;
            }
            true
        });
        (bytes, files)
    }
}

/// Visits what is under `dir` (not following links), `depth` levels down, until `visit`
/// says stop.
fn walk(root: &Path, dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path, &std::fs::Metadata) -> bool) -> bool {
    walk_full(root, dir, depth, &mut |rel, meta, _| visit(rel, meta))
}

fn walk_full(
    root: &Path,
    dir: &Path,
    depth: usize,
    visit: &mut dyn FnMut(&Path, &std::fs::Metadata, &Path) -> bool,
) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return true };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let full = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&full) else { continue };
        let rel = full.strip_prefix(root).unwrap_or(&full).to_path_buf();
        if !visit(&rel, &meta, &full) {
            return false;
        }
        if meta.is_dir() && depth > 1 && entry.file_name() != ".git" && !walk_full(root, &full, depth - 1, visit) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> Workspace {
        let dir = std::env::temp_dir().join(format!("agentry-ws-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        Workspace::new(dir)
    }

    #[test]
    fn paths_stay_inside_and_links_are_not_followed() {
        let w = ws();
        for bad in ["/etc/passwd", "../x", "a/../../x", "/workspace/../etc"] {
            assert_eq!(w.resolve(bad), Err(WorkspaceError::Outside(bad.into())), "{bad}");
        }
        assert_eq!(w.resolve("/workspace/src/a.rs").expect("ok"), w.root().join("src/a.rs"));
        assert_eq!(w.resolve(".").expect("ok"), w.root());
        std::os::unix::fs::symlink("/etc", w.root().join("etc")).expect("link");
        assert_eq!(w.read("etc/passwd", 1, 10), Err(WorkspaceError::Link("etc/passwd".into())));
        assert_eq!(w.write("etc/evil", "x"), Err(WorkspaceError::Link("etc/evil".into())));
        assert!(!Path::new("/etc/evil").exists());
        std::os::unix::fs::symlink("/etc/hostname", w.root().join("h")).expect("link");
        assert_eq!(w.edit("h", "a", "b", false), Err(WorkspaceError::Link("h".into())));
        let listed = w.list(".", 3).expect("list");
        assert!(!listed.contains("passwd"), "{listed}");
        let _ = std::fs::remove_dir_all(w.root());
    }

    #[test]
    fn write_read_edit_list_search() {
        let w = ws();
        assert_eq!(w.write("src/main.py", "print('hello')\nprint('bye')\n"), Ok(Written::Created));
        assert_eq!(w.write("src/main.py", "print('hello')\nprint('hello')\nprint('bye')\n"), Ok(Written::Changed));
        assert_eq!(
            w.read("src/main.py", 1, 100).expect("read"),
            "     1\tprint('hello')\n     2\tprint('hello')\n     3\tprint('bye')\n"
        );
        assert_eq!(
            w.read("src/main.py", 2, 1).expect("read"),
            "     2\tprint('hello')\n[1 more lines: read on from line 3]\n"
        );
        assert_eq!(
            w.edit("src/main.py", "print('hello')", "print('hi')", false),
            Err(WorkspaceError::Ambiguous { path: "src/main.py".into(), count: 2 })
        );
        assert_eq!(w.edit("src/main.py", "print('hello')", "print('hi')", true), Ok(2));
        assert_eq!(w.edit("src/main.py", "nothing", "x", false), Err(WorkspaceError::NotFound("src/main.py".into())));
        assert_eq!(w.edit("src/main.py", "print('bye')", "print('so long')", false), Ok(1));
        assert_eq!(
            std::fs::read_to_string(w.root().join("src/main.py")).expect("file"),
            "print('hi')\nprint('hi')\nprint('so long')\n"
        );
        assert_eq!(w.list(".", 2).expect("list"), "src/\nsrc/main.py  (41 bytes)");
        assert_eq!(w.search("so long", ".").expect("search"), "src/main.py:3: print('so long')");
        assert_eq!(w.search("absent", "src").expect("search"), "No line contains \"absent\".");
        assert_eq!(w.read("nope.txt", 1, 10), Err(WorkspaceError::Missing("nope.txt".into())));
        assert_eq!(w.read("src", 1, 10), Err(WorkspaceError::Directory("src".into())));
        std::fs::write(w.root().join("bin"), [0xff, 0xfe, 0x00]).expect("bin");
        assert_eq!(w.read("bin", 1, 10), Err(WorkspaceError::NotText("bin".into())));
        let big = "x".repeat(WRITE_MAX + 1);
        let err = w.write("big.txt", &big).expect_err("too big");
        assert!(err.to_string().contains(&WRITE_MAX.to_string()), "{err}");
        assert!(!w.root().join("big.txt").exists());
        assert_eq!(w.usage(), (44, 2));
        let _ = std::fs::remove_dir_all(w.root());
    }
}
