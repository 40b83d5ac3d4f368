//! Turning an upload (a zip, or a folder's files) into a checked list of files, and
//! reading SKILL.md's front matter. Every limit in `model::skills` is enforced here,
//! against what is actually read, not what an archive declares.

use std::io::Read;

use model::skills::{
    self as limits, DESCRIPTION_MAX, FRONT_MATTER_MAX, MAX_ENTRIES, MAX_FILE_BYTES, MAX_FILES, MAX_RATIO,
    MAX_TOTAL_BYTES, RATIO_FLOOR, UploadProblem, clean_path, split_front_matter, valid_name,
};

/// One file of a skill, as uploaded.
pub struct Upload {
    pub path: String,
    pub bytes: Vec<u8>,
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// Files an archiver adds that nobody means to upload.
fn is_junk(path: &[u8]) -> bool {
    path.starts_with(b"__MACOSX/") || path.ends_with(b".DS_Store") || path == b".DS_Store"
}

/// Reads a zip: refuses unsafe names, links, too many or too large files and bombs.
pub fn read_zip(bytes: &[u8]) -> Result<Vec<Upload>, UploadProblem> {
    let bad = |e: zip::result::ZipError| UploadProblem::BadArchive(e.to_string());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(bad)?;
    if zip.len() > MAX_ENTRIES {
        return Err(UploadProblem::TooManyFiles(MAX_FILES));
    }
    if zip.has_duplicate_names() {
        return Err(UploadProblem::BadArchive("an entry name appears twice".into()));
    }
    if zip.has_overlapping_files().map_err(bad)? {
        return Err(UploadProblem::BadArchive("entries overlap (a zip bomb?)".into()));
    }
    // First pass, the directory only: names, kinds, declared sizes and ratios.
    let mut wanted = Vec::new();
    let mut declared_total = 0u64;
    for i in 0..zip.len() {
        let e = zip.by_index_data(i).map_err(bad)?;
        let raw = e.name_raw();
        if is_junk(raw) {
            continue;
        }
        let shown = String::from_utf8_lossy(raw).into_owned();
        let kind = e.unix_mode().map_or(0, |m| m & S_IFMT);
        if e.is_symlink() || !(kind == 0 || kind == S_IFREG || kind == S_IFDIR) {
            return Err(UploadProblem::Symlink(shown));
        }
        if e.is_dir() {
            clean_path(&raw[..raw.len() - 1])?;
            continue;
        }
        let path = clean_path(raw)?;
        if e.encrypted()
            || !matches!(e.compression(), zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated)
        {
            return Err(UploadProblem::Unsupported(path));
        }
        let (size, packed) = (e.size(), e.compressed_size());
        if size > MAX_FILE_BYTES {
            return Err(UploadProblem::FileTooLarge { path, limit: MAX_FILE_BYTES });
        }
        let ratio = size / packed.max(1);
        if size > RATIO_FLOOR && ratio > MAX_RATIO {
            return Err(UploadProblem::Ratio { path, ratio, limit: MAX_RATIO });
        }
        declared_total = declared_total.saturating_add(size);
        if declared_total > MAX_TOTAL_BYTES {
            return Err(UploadProblem::TooLarge(MAX_TOTAL_BYTES));
        }
        wanted.push((i, path, size));
        if wanted.len() > MAX_FILES {
            return Err(UploadProblem::TooManyFiles(MAX_FILES));
        }
    }
    // Second pass: unpack, never reading more than declared (a lying header is refused).
    let mut out = Vec::with_capacity(wanted.len());
    for (i, path, declared) in wanted {
        let mut f = zip.by_index(i).map_err(bad)?;
        let mut buf = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        (&mut f)
            .take(declared + 1)
            .read_to_end(&mut buf)
            .map_err(|e| UploadProblem::BadArchive(format!("{path}: {e}")))?;
        if buf.len() as u64 != declared {
            return Err(UploadProblem::BadArchive(format!("{path}: its size differs from what the archive says")));
        }
        out.push(Upload { path, bytes: buf });
    }
    Ok(out)
}

/// Checks a set of files (from a zip or a folder upload): paths, counts, sizes and
/// duplicates. A single top folder around everything is removed (`my-skill/SKILL.md`
/// → `SKILL.md`), as "compress folder" and folder pickers add one.
pub fn check_files(mut files: Vec<Upload>) -> Result<Vec<Upload>, UploadProblem> {
    files.retain(|f| !is_junk(f.path.as_bytes()));
    if files.is_empty() {
        return Err(UploadProblem::Empty);
    }
    if files.len() > MAX_FILES {
        return Err(UploadProblem::TooManyFiles(MAX_FILES));
    }
    let mut total = 0u64;
    for f in &mut files {
        f.path = clean_path(f.path.as_bytes())?;
        let size = f.bytes.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(UploadProblem::FileTooLarge { path: f.path.clone(), limit: MAX_FILE_BYTES });
        }
        total += size;
        if total > MAX_TOTAL_BYTES {
            return Err(UploadProblem::TooLarge(MAX_TOTAL_BYTES));
        }
    }
    let top = files[0].path.split_once('/').map(|(t, _)| format!("{t}/"));
    if let Some(top) = top
        && !files.iter().any(|f| f.path == "SKILL.md")
        && files.iter().all(|f| f.path.starts_with(&top))
    {
        for f in &mut files {
            f.path = f.path[top.len()..].to_owned();
        }
    }
    let mut seen: Vec<String> = Vec::with_capacity(files.len());
    for f in &files {
        let key = f.path.to_lowercase();
        if seen.contains(&key) {
            return Err(UploadProblem::Duplicate(f.path.clone()));
        }
        seen.push(key);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[derive(serde::Deserialize)]
struct FrontMatter {
    name: String,
    description: String,
}

/// `(name, description)` from SKILL.md's front matter, both required and checked.
pub fn front_matter(files: &[Upload]) -> Result<(String, String), UploadProblem> {
    let md = files.iter().find(|f| f.path == "SKILL.md").ok_or(UploadProblem::NoSkillMd)?;
    if md.bytes.len() as u64 > limits::SKILL_MD_MAX {
        return Err(UploadProblem::FileTooLarge { path: "SKILL.md".into(), limit: limits::SKILL_MD_MAX });
    }
    let fm = |m: &str| UploadProblem::FrontMatter(m.to_owned());
    let text = std::str::from_utf8(&md.bytes).map_err(|_| fm("not UTF-8 text"))?;
    let (yaml, _) = split_front_matter(text).ok_or_else(|| fm("it must start with front matter between --- lines"))?;
    if yaml.len() > FRONT_MATTER_MAX {
        return Err(UploadProblem::FrontMatter(format!("the front matter is longer than {FRONT_MATTER_MAX} bytes")));
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 2_000;
    budget.max_events = 10_000;
    budget.max_aliases = 16;
    budget.max_anchors = 16;
    budget.max_depth = 8;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = 64 * 1024;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.with_snippet = false;
    let parsed: FrontMatter =
        serde_saphyr::from_str_with_options(yaml, opts).map_err(|e| UploadProblem::FrontMatter(e.to_string()))?;
    let name = parsed.name.trim().to_owned();
    let description = parsed.description.trim().to_owned();
    if !valid_name(&name) {
        return Err(fm("`name` must be 1–64 lowercase letters, digits and single dashes, like pdf-tools"));
    }
    if description.is_empty() || description.chars().count() > DESCRIPTION_MAX {
        return Err(UploadProblem::FrontMatter(format!("`description` must be 1–{DESCRIPTION_MAX} characters")));
    }
    Ok((name, description))
}
