//! Skills on both backends: archive attacks refused with nothing stored, a valid skill
//! round-trips byte for byte, re-upload versions, isolation, and delete while in use.

use std::io::Write;

use engine::Engine;
use engine::skills::{SkillError, Upload};
use engine::testing::{each_backend, two_users};
use model::skills::UploadProblem;
use zip::write::SimpleFileOptions;

const SKILL_MD: &str = "---\nname: pdf-tools\ndescription: >\n  Extracts text from PDFs.\n---\n# PDF tools\n\nRun [the script](scripts/run.py).\n<script>alert(1)</script>\n";

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        w.start_file(*name, SimpleFileOptions::default()).expect("start");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(70_000).collect()
}

/// Incompressible bytes (a simple LCG), so size limits trip before the ratio check.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn from_zip(bytes: &[u8]) -> Result<Vec<Upload>, UploadProblem> {
    engine::skills::intake::read_zip(bytes)
}

async fn count(e: &Engine, table: &str) -> i64 {
    engine::sqlx::query_scalar(engine::sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&e.store.pool)
        .await
        .expect("count")
}

fn blob_files(e: &Engine) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
            .unwrap_or(0)
    }
    walk(&e.settings.data_dir.join("blobs"))
}

#[tokio::test]
async fn a_valid_skill_round_trips_byte_for_byte() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let me = &t.member.user;
        let bin = binary();
        let archive = zip_of(&[
            ("pdf-tools/SKILL.md", SKILL_MD.as_bytes()),
            ("pdf-tools/scripts/run.py", b"print('hi')\n"),
            ("pdf-tools/data/blob.bin", &bin),
        ]);
        let s = e.upload_skill(me, from_zip(&archive).expect("zip")).await.expect("upload");
        assert_eq!((s.name.as_str(), s.description.as_str(), s.version), ("pdf-tools", "Extracts text from PDFs.", 1));
        let paths: Vec<_> = s.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["SKILL.md", "data/blob.bin", "scripts/run.py"]);
        assert_eq!(e.skill_file(me, &s.id, None, "data/blob.bin").await.expect("bin"), bin);
        assert_eq!(e.skill_file(me, &s.id, None, "SKILL.md").await.expect("md"), SKILL_MD.as_bytes());
        assert!(s.html.contains("<h1>PDF tools</h1>") && !s.html.contains("<script"), "{}", s.html);
        assert!(s.html.contains(&format!("href=\"/skills/{}/files/scripts/run.py\"", s.id)), "{}", s.html);
        assert!(matches!(e.skill_file(me, &s.id, None, "../../jwt.key").await, Err(SkillError::FileNotFound)));

        // A folder upload of the same name is its next version; the old one stays readable.
        let folder = vec![
            Upload {
                path: "pdf-tools/SKILL.md".into(),
                bytes: SKILL_MD.replace("PDF tools", "PDF tools 2").into_bytes(),
            },
            Upload { path: "pdf-tools/README.txt".into(), bytes: b"v2".to_vec() },
        ];
        let v2 = e.upload_skill(me, folder).await.expect("v2");
        assert_eq!((v2.id.as_str(), v2.version, v2.files.len()), (s.id.as_str(), 2, 2));
        assert_eq!(e.skill_file(me, &s.id, Some(1), "data/blob.bin").await.expect("v1 file"), bin);
        assert_eq!(e.list_skills(me, "", 1).await.expect("list").items.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn every_archive_attack_is_refused_and_nothing_is_stored() {
    let md = SKILL_MD.as_bytes();
    let symlink = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("SKILL.md", SimpleFileOptions::default()).expect("start");
        w.write_all(md).expect("write");
        w.add_symlink("secrets", "/etc/passwd", SimpleFileOptions::default()).expect("symlink");
        w.finish().expect("finish").into_inner()
    };
    let bomb = {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("SKILL.md", SimpleFileOptions::default()).expect("start");
        w.write_all(md).expect("write");
        w.start_file("zeros.bin", opts).expect("start");
        w.write_all(&zeros).expect("write");
        w.finish().expect("finish").into_inner()
    };
    let many: Vec<(String, Vec<u8>)> = (0..201).map(|i| (format!("f{i}.txt"), b"x".to_vec())).collect();
    let many: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let big: Vec<Vec<u8>> = (0..5).map(|i| noise(4_500_000, i)).collect();
    let mut huge: Vec<(&str, &[u8])> = vec![("SKILL.md", md)];
    let names = ["a.bin", "b.bin", "c.bin", "d.bin", "e.bin"];
    huge.extend(names.iter().zip(&big).map(|(n, b)| (*n, b.as_slice())));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zip slip", zip_of(&[("SKILL.md", md), ("../evil.txt", b"x")])),
        ("absolute path", zip_of(&[("SKILL.md", md), ("/etc/passwd", b"x")])),
        ("NUL byte", zip_of(&[("SKILL.md", md), ("a\0b.txt", b"x")])),
        ("symlink", symlink),
        ("too many files", zip_of(&many)),
        ("too large in total", zip_of(&huge)),
        ("zip bomb", bomb),
        ("not a zip", b"PK\x03\x04 this is not really a zip".to_vec()),
    ];
    let expect = |what: &str, r: &Result<Vec<Upload>, UploadProblem>| {
        let ok = matches!(
            (what, r),
            ("zip slip" | "absolute path" | "NUL byte", Err(UploadProblem::BadPath { .. }))
                | ("symlink", Err(UploadProblem::Symlink(_)))
                | ("too many files", Err(UploadProblem::TooManyFiles(200)))
                | ("too large in total", Err(UploadProblem::TooLarge(_)))
                | ("zip bomb", Err(UploadProblem::Ratio { .. }))
                | ("not a zip", Err(UploadProblem::BadArchive(_)))
        );
        assert!(ok, "{what}: {:?}", r.as_ref().map(Vec::len));
    };
    for (what, bytes) in &cases {
        expect(what, &from_zip(bytes));
    }
    // Front matter problems and folder uploads with unsafe names reach the engine: nothing is stored.
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let me = &t.member.user;
        let up = |path: &str, bytes: &[u8]| Upload { path: path.into(), bytes: bytes.to_vec() };
        let laughs = "---\nname: x\ndescription: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n---\n";
        let bad: Vec<(&str, Vec<Upload>)> = vec![
            ("no SKILL.md", vec![up("README.md", b"hi")]),
            ("no description", vec![up("SKILL.md", b"---\nname: x\n---\n")]),
            ("bad name", vec![up("SKILL.md", b"---\nname: Bad Name\ndescription: d\n---\n")]),
            ("no front matter", vec![up("SKILL.md", b"# just text")]),
            ("billion laughs", vec![up("SKILL.md", laughs.as_bytes())]),
            ("folder slip", vec![up("SKILL.md", md), up("../x", b"x")]),
            ("case clash", vec![up("SKILL.md", md), up("a.txt", b"1"), up("A.TXT", b"2")]),
            ("empty", vec![]),
        ];
        for (what, files) in bad {
            let err = e.upload_skill(me, files).await.expect_err(what);
            assert!(matches!(err, SkillError::Refused(_)), "{what}: {err:?}");
        }
        assert_eq!(count(&e, "skills").await, 0);
        assert_eq!(count(&e, "skill_versions").await, 0);
        assert_eq!(blob_files(&e), 0, "no file was left in blob storage");
    })
    .await;
}

#[tokio::test]
async fn another_users_skill_is_not_found_and_a_used_skill_is_not_deleted() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let (owner, other) = (&t.member.user, &t.admin.user);
        let s = e
            .upload_skill(owner, from_zip(&zip_of(&[("SKILL.md", SKILL_MD.as_bytes())])).expect("zip"))
            .await
            .expect("up");
        assert!(matches!(e.get_skill(other, &s.id).await, Err(SkillError::NotFound)));
        assert!(matches!(e.skill_file(other, &s.id, None, "SKILL.md").await, Err(SkillError::NotFound)));
        assert!(matches!(e.delete_skill(other, &s.id).await, Err(SkillError::NotFound)));
        assert!(e.list_skills(other, "", 1).await.expect("list").items.is_empty());

        // Attached to an agent, the skill cannot be deleted; detached, it can.
        let d = model::providers::ProviderForm {
            name: "P".into(),
            kind: "openai".into(),
            base_url: "https://api.example.com/v1".into(),
            ..Default::default()
        };
        let p = e.create_provider(owner, d.parse().expect("draft")).await.expect("provider");
        let mut spec = model::agents::AgentForm {
            name: "Reader".into(),
            provider_id: p.id.clone(),
            model: "m".into(),
            skills: vec![s.id.clone()],
            ..Default::default()
        }
        .parse()
        .expect("spec");
        let a = e.create_agent(owner, spec.clone()).await.expect("agent");
        // Another user's agent cannot attach it.
        assert!(e.create_agent(other, spec.clone()).await.is_err());
        match e.delete_skill(owner, &s.id).await {
            Err(SkillError::InUse(names)) => assert_eq!(names, ["Reader"]),
            other => panic!("expected in use, got {other:?}"),
        }
        let doc = e.export_agent(owner, &a.id).await.expect("export");
        assert_eq!(doc.skills, ["pdf-tools"]);
        spec.skills.clear();
        e.update_agent(owner, &a.id, None, spec).await.expect("detach");
        e.delete_skill(owner, &s.id).await.expect("delete");
        assert_eq!(count(&e, "skill_versions").await, 0);
        assert_eq!(blob_files(&e), 0);
    })
    .await;
}

/// Versions count against the owner's storage quota: past it an upload is refused with the
/// figures, nothing stored; deleting the old versions frees their room (and their files).
#[tokio::test]
async fn uploads_past_the_storage_quota_are_refused_until_old_versions_are_pruned() {
    for b in engine::testing::backends() {
        let mut settings = engine::testing::settings(b).await;
        settings.limits.storage_per_user_bytes = 5_000;
        let e = Engine::start(settings).await.expect("engine");
        let t = two_users(&e).await;
        let me = &t.member.user;
        let version = |n: u8| {
            vec![
                Upload { path: "pdf-tools/SKILL.md".into(), bytes: SKILL_MD.as_bytes().to_vec() },
                Upload { path: "pdf-tools/data.bin".into(), bytes: noise(1_800, u32::from(n)) },
            ]
        };
        let v1 = e.upload_skill(me, version(1)).await.expect("v1");
        e.upload_skill(me, version(2)).await.expect("v2");
        let used = e.storage_used(me).await.expect("used");
        match e.upload_skill(me, version(3)).await {
            Err(SkillError::Quota { used: u, quota, .. }) => assert_eq!((u, quota), (used, 5_000), "{b:?}"),
            other => panic!("{b:?}: expected the quota to refuse, got {other:?}"),
        }
        assert_eq!(e.get_skill(me, &v1.id).await.expect("skill").version, 2, "{b:?}: nothing was stored");
        // Another user's room is their own.
        e.upload_skill(&t.admin.user, version(4)).await.expect("another user's upload");

        let files = blob_files(&e);
        assert_eq!(e.prune_skill_versions(me, &v1.id).await.expect("prune"), 1);
        assert!(matches!(e.skill_file(me, &v1.id, Some(1), "data.bin").await, Err(SkillError::NotFound)));
        assert_eq!(blob_files(&e), files - 2, "{b:?}: version 1's two files are gone");
        assert!(e.skill_file(me, &v1.id, None, "data.bin").await.is_ok(), "the current version stays");
        let v3 = e.upload_skill(me, version(3)).await.expect("room again");
        assert_eq!(v3.version, 3);
        assert!(matches!(e.prune_skill_versions(&t.admin.user, &v1.id).await, Err(SkillError::NotFound)));
    }
}

#[tokio::test]
async fn the_data_dir_keys_database_and_blobs_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    /// In octal, as `ls` and a failure message should show it.
    fn mode(p: &std::path::Path) -> String {
        let meta = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        format!("{:04o}", meta.permissions().mode() & 0o777)
    }
    fn walk(p: &std::path::Path, found: &mut Vec<(std::path::PathBuf, String)>) {
        for e in std::fs::read_dir(p).expect("read dir").flatten() {
            found.push((e.path(), mode(&e.path())));
            if e.path().is_dir() {
                walk(&e.path(), found);
            }
        }
    }
    fn assert_owner_only(dir: &std::path::Path) {
        assert_eq!(mode(dir), "0700", "{}", dir.display());
        for name in ["agentry.db", "jwt.key", "secrets.key"] {
            assert_eq!(mode(&dir.join(name)), "0600", "{name}");
        }
        for name in ["agentry.db-wal", "agentry.db-shm"] {
            if dir.join(name).exists() {
                assert_eq!(mode(&dir.join(name)), "0600", "{name}");
            }
        }
        let mut found = Vec::new();
        walk(&dir.join("blobs"), &mut found);
        assert!(found.iter().any(|(p, _)| p.is_file()), "no blob was written");
        for (p, m) in found {
            assert_eq!(m, if p.is_dir() { "0700" } else { "0600" }, "{}", p.display());
        }
    }

    let settings = engine::testing::settings(engine::infra::store::Backend::Sqlite).await;
    let dir = settings.data_dir.clone();
    // As a umask of 022 makes it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let e = Engine::start(settings.clone()).await.expect("engine");
    let t = two_users(&e).await;
    let archive = zip_of(&[("pdf-tools/SKILL.md", SKILL_MD.as_bytes()), ("pdf-tools/scripts/run.py", b"print(1)\n")]);
    e.upload_skill(&t.member.user, from_zip(&archive).expect("zip")).await.expect("upload");
    assert_owner_only(&dir);
    e.store.close().await;
    drop(e);

    // An install from before: what it left open is closed at the next start.
    for (p, m) in [(dir.clone(), 0o755), (dir.join("agentry.db"), 0o644), (dir.join("jwt.key"), 0o644)] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }
    let e = Engine::start(settings).await.expect("restart");
    assert_owner_only(&dir);
    e.store.close().await;
}
