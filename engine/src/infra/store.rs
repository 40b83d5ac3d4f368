//! One `sqlx` pool over SQLite (default) or PostgreSQL, chosen by the URL scheme. Every
//! query is `&'static str` text with `$n` placeholders that both backends accept.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite has one writer at a time; a second one waits in SQLite's busy handler, which
    /// sleeps in steps of 1 to 100 ms while holding a pooled connection. Write transactions
    /// on the busy paths (sending, storing run events) queue here instead, in order. (With
    /// the write connection below they would also queue for it, but against the pool's
    /// acquire timeout; here they wait without one.)
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// SQLite's connection for [`Store::begin`]; PostgreSQL's write transactions use the pool.
    writes: Option<AnyPool>,
}

/// When SQLite's commits are on disk (`sqlite_synchronous`): `full`, before anyone is told a
/// commit succeeded, power loss included; `normal` (in WAL mode), safe from a crash of this
/// process but the last commits may be lost with the machine's power.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl Durability {
    /// The pragmas every SQLite connection starts with. WAL lets readers run beside the one
    /// writer; busy_timeout makes writers queue instead of failing with SQLITE_BUSY.
    /// Temporary data in memory: the statement journal of a multi-row write otherwise spills
    /// to a temp file past 64 KiB, a write call per page (about half of all write calls
    /// while a thousand answers stream). Run events are written in rounds, so `full` costs
    /// an fsync per round, not per event.
    fn sqlite_pragmas(self) -> &'static str {
        match self {
            Self::Full => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;"
            }
            Self::Normal => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;"
            }
        }
    }
}

/// A pool of at most `max` connections, each set up for `backend`.
async fn open_pool(
    backend: Backend,
    opts: AnyConnectOptions,
    max: u32,
    durability: Durability,
) -> Result<AnyPool, StoreError> {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        // No ping before each query: a dead connection shows in the query itself, and
        // the ping was a round trip on every request.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(durability.sqlite_pragmas()).await?;
                }
                Ok(())
            })
        })
        .connect_with(opts)
        .await
        .map_err(StoreError::Connect)
}

/// Makes the SQLite file and its `-wal` and `-shm` owner-only (they are created with the
/// umask's 0644 as a rule). SQLite gives the `-wal` and `-shm` it creates later the
/// database file's mode, so they stay owner-only too.
fn sqlite_owner_only(url: &str) {
    let Ok(opts) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else { return };
    for suffix in ["", "-wal", "-shm"] {
        let mut path = opts.get_filename().as_os_str().to_owned();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        if let Err(e) = crate::infra::owner_only::set(&path, crate::infra::owner_only::FILE) {
            tracing::warn!(path = %path.display(), error = %e, "could not make the database file owner-only");
        }
    }
}

/// Held with a write transaction on SQLite (see [`Store::begin`]); nothing on PostgreSQL.
pub type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme in {0:?}: use sqlite:… or postgres://…")]
    UnknownScheme(String),
    #[error("could not connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// The kind of constraint a write broke, told apart in one place so no caller matches
/// on error strings.
#[derive(Debug, PartialEq, Eq)]
pub enum Constraint {
    Unique,
    ForeignKey,
    Other,
}

/// Classifies a constraint violation, if that is what the error is.
pub fn on_constraint(e: &sqlx::Error) -> Option<Constraint> {
    let db = e.as_database_error()?;
    Some(if db.is_unique_violation() {
        Constraint::Unique
    } else if db.is_foreign_key_violation() {
        Constraint::ForeignKey
    } else if db.is_check_violation() {
        Constraint::Other
    } else {
        return None;
    })
}

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Durability::Full).await
    }

    /// [`Store::connect`], with SQLite's commits as durable as `durability` says.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnknownScheme(scheme.to_owned()));
        };
        let opts = AnyConnectOptions::from_str(url).map_err(StoreError::Connect)?;
        let pool =
            open_pool(backend, opts.clone(), if backend == Backend::Sqlite { 8 } else { 20 }, durability).await?;
        // On SQLite the write transactions get a connection of their own, so that its page
        // cache stays warm: a connection whose last transaction was not the latest write
        // throws its cache away at its next one (about 2% of the server's CPU at 1,000
        // streams, most of it re-reading pages the flusher had just written).
        let writes = match backend {
            Backend::Sqlite => Some(open_pool(backend, opts, 1, durability).await?),
            Backend::Postgres => None,
        };
        if backend == Backend::Sqlite {
            sqlite_owner_only(url);
        }
        Ok(Self { pool, backend, writes, writer: Default::default() })
    }

    /// A write transaction and, on SQLite, this process's turn to write: keep the turn until
    /// the transaction is committed (never begin another while holding one).
    pub async fn begin(&self) -> Result<(sqlx::Transaction<'static, sqlx::Any>, WriteTurn), sqlx::Error> {
        let turn = match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        Ok((self.writes.as_ref().unwrap_or(&self.pool).begin().await?, turn))
    }

    /// Closes the connections, waiting for those in use to come back.
    pub async fn close(&self) {
        if let Some(w) = &self.writes {
            w.close().await;
        }
        self.pool.close().await;
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Runs the migrations up to `version` only: a database as an older Agentry left it,
    /// for tests that migrate real rows.
    #[cfg(any(test, feature = "testing"))]
    pub async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations").run_to(version, &self.pool).await?;
        Ok(())
    }

    /// A trivial round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A statement over many rows: `head`, then groups of `cols` placeholders, then `tail`.
/// It runs in chunks of a few sizes ([`Rows::CHUNKS`]), each built once and so prepared
/// once, which turns a thousand single-row statements (each a round trip to the database)
/// into a few dozen.
pub struct Rows {
    head: &'static str,
    cols: usize,
    tail: &'static str,
    sql: std::sync::OnceLock<Vec<String>>,
}

/// A query over the pool's database, whichever it is.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Rows {
    /// Rows per statement, largest first.
    const CHUNKS: [usize; 4] = [64, 16, 4, 1];

    pub const fn new(head: &'static str, cols: usize, tail: &'static str) -> Self {
        Self { head, cols, tail, sql: std::sync::OnceLock::new() }
    }

    /// The statement for `rows` rows. On SQLite the placeholders are plain `?` (numbered
    /// in order, as bound): SQLite finds a `$n`'s number by walking the statement's list of
    /// names, which over hundreds of placeholders cost more than the insert.
    fn sql(&self, rows: usize, sqlite: bool) -> &str {
        let all = self.sql.get_or_init(|| {
            [false, true]
                .into_iter()
                .flat_map(|sqlite| {
                    Self::CHUNKS.iter().map(move |&n| {
                        let groups: Vec<String> = (0..n)
                            .map(|r| {
                                let p: Vec<String> = (1..=self.cols)
                                    .map(|c| if sqlite { "?".to_owned() } else { format!("${}", r * self.cols + c) })
                                    .collect();
                                format!("({})", p.join(", "))
                            })
                            .collect();
                        format!("{}{}{}", self.head, groups.join(", "), self.tail)
                    })
                })
                .collect()
        });
        let i = Self::CHUNKS.iter().position(|&n| n == rows).unwrap_or(Self::CHUNKS.len() - 1);
        &all[i + if sqlite { Self::CHUNKS.len() } else { 0 }]
    }

    /// Runs the statement over `items` in `tx`; `bind` binds one item's `cols` values.
    /// Values are bound a chunk at a time, between the statements' awaits, so that a long
    /// list never holds the thread for long.
    pub async fn run<'q, T>(
        &'static self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        items: &'q [T],
        bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    ) -> Result<(), sqlx::Error> {
        let sqlite = tx.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME;
        let mut rest = items;
        while !rest.is_empty() {
            let n = Self::CHUNKS.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(n);
            let mut q = sqlx::query(self.sql(n, sqlite));
            for item in chunk {
                q = bind(q, item);
            }
            q.execute(&mut **tx).await?;
            rest = tail;
        }
        Ok(())
    }
}

/// A value bound to a list's filter (its `$1…$n`).
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// A paged list: the rows of `SELECT {columns} FROM {from} WHERE {filter} ORDER BY {order}`,
/// a page at a time, and how many there are in all. Every list in Agentry (search, count,
/// page) is one of these.
pub struct List {
    pub columns: &'static str,
    pub from: &'static str,
    /// With `$1…$n` for the values given to [`List::page`]; it must filter by owner.
    pub filter: &'static str,
    /// Ends with a unique column, so that pages never overlap.
    pub order: &'static str,
    pub per_page: u32,
}

impl List {
    /// Page `page` (from 1) of the rows matching the filter with `args`, each read by `row`.
    pub async fn page<T, E: From<sqlx::Error>>(
        &self,
        pool: &sqlx::AnyPool,
        args: &[Arg<'_>],
        page: u32,
        row: impl Fn(&sqlx::any::AnyRow) -> Result<T, E>,
    ) -> Result<model::Page<T>, E> {
        use sqlx::Row;
        let page = page.max(1);
        let bound = |sql: String| {
            args.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, a| match a {
                Arg::Text(s) => q.bind(*s),
                Arg::Int(i) => q.bind(*i),
            })
        };
        let count = format!("SELECT COUNT(*) FROM {} WHERE {}", self.from, self.filter);
        let total: i64 = bound(count).fetch_one(pool).await?.try_get(0)?;
        let (limit, offset) = page_bounds(page, self.per_page);
        let n = args.len();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT ${} OFFSET ${}",
            self.columns,
            self.from,
            self.filter,
            self.order,
            n + 1,
            n + 2
        );
        let rows = bound(sql).bind(limit).bind(offset).fetch_all(pool).await?;
        let items = rows.iter().map(row).collect::<Result<_, E>>()?;
        Ok(model::Page { items, total, page, per_page: self.per_page })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A `LIKE … ESCAPE '\'` pattern matching `q` anywhere, case folded; `%` and `_` typed into
/// a search box are literal.
pub fn like_pattern(q: &str) -> String {
    let escaped = q.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// `LIMIT` and `OFFSET` for page `page` (from 1) of `per_page`.
pub fn page_bounds(page: u32, per_page: u32) -> (i64, i64) {
    (i64::from(per_page), i64::from(page.max(1) - 1) * i64::from(per_page))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Rows` picks its placeholders by the transaction's backend name.
    #[tokio::test]
    async fn a_sqlite_transaction_names_its_backend_as_rows_expects() {
        let dir = std::env::temp_dir().join(format!("agentry-rows-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Store::connect(&format!("sqlite://{}/t.db?mode=rwc", dir.display())).await.expect("store");
        let tx = store.pool.begin().await.expect("tx");
        assert_eq!(tx.backend_name(), <sqlx::Sqlite as sqlx::Database>::NAME);
        static T: Rows = Rows::new("INSERT INTO t (a, b) VALUES ", 2, "");
        assert_eq!(T.sql(4, true), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?)");
        assert_eq!(T.sql(1, false), "INSERT INTO t (a, b) VALUES ($1, $2)");
        drop(tx);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every SQLite connection, the write connection included, syncs as configured: FULL
    /// unless the operator chose NORMAL.
    #[tokio::test]
    async fn sqlite_commits_are_synced_as_configured() {
        let dir = std::env::temp_dir().join(format!("agentry-sync-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        for (durability, level) in [(Durability::Full, 2i64), (Durability::Normal, 1)] {
            let url = format!("sqlite://{}/{durability:?}.db?mode=rwc", dir.display());
            let store = Store::connect_with(&url, durability).await.expect("store");
            let read: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.pool).await.expect("read");
            let (mut tx, _turn) = store.begin().await.expect("begin");
            let write: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *tx).await.expect("write");
            assert_eq!((read, write), (level, level), "{durability:?}");
            drop(tx);
            store.close().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
