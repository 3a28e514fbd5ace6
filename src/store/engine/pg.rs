//! PostgreSQL: each tree is a table `(key bytea PRIMARY KEY, value bytea)` named as the tree, so
//! keys sort as sled sorts them (byte by byte) and every layout of `keys.rs` holds unchanged.
//!
//! The store's methods are synchronous (sled's are); the connections live on a small runtime of
//! their own, and each call hands its work to it and waits. That works from any thread, async
//! or not, and never starts a runtime inside another.
//!
//! Order and durability, as with sled (`write.rs`, `durability.rs`): every write transaction first
//! takes one advisory lock, so writes — on any number of API nodes — commit one at a time, and
//! numbers (arrival order, audit entries) drawn after the lock commit in order: a reader paging
//! by number can never miss an entry that commits behind it. Writes commit with
//! `synchronous_commit` off, so the lock is held for no disk flush; the group commit then makes
//! them durable with one small transaction committed with `synchronous_commit` on (the server's
//! own setting, `on` or stronger, which also waits for a synchronous standby): its flush covers
//! every commit before it, provided it runs on the same server as they did (after a failover or
//! a restart it may not: see [`Pg::sync`]). Nothing is acknowledged to a client before that.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Abort, IVec, TREES, TreeEntries, TxError, TxTree};
use crate::store::StoreError;

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// A `postgres://` URL (several hosts and `target_session_attrs=read-write` allowed).
    pub url: String,
    /// Connections this process keeps at most.
    pub pool_size: usize,
    /// How long a request waits for a connection (and a new connection to open) before the
    /// server answers 503 `not_ready`.
    pub connect_timeout: Duration,
    /// Certificate authorities to trust for `sslmode=require` (default: the system's).
    pub ca_file: Option<PathBuf>,
}

/// Never prints the URL: it may hold a password.
impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &"postgres://…")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Where Debian (and most distributions) keep the system's trusted certificate authorities.
const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS connector for `sslmode=require`: the server's certificate must chain to `ca_file`
/// (or the system's authorities) and name the host connected to. Any other sslmode connects
/// without TLS: `prefer` would silently accept an unverified server, so it is treated as
/// `disable`, and a deployment that wants encryption says `require`.
fn tls(
    config: &mut tokio_postgres::Config,
    ca_file: Option<&Path>,
) -> Result<MakeRustlsConnect, StoreError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio_postgres::config::SslMode;

    let mut roots = rustls::RootCertStore::empty();
    if config.get_ssl_mode() == SslMode::Require {
        let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_FILE));
        let problem = |e: &dyn std::fmt::Display| {
            StoreError::Postgres(format!("SURVEY_PG_CA_FILE {}: {e}", path.display()))
        };
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| problem(&e))? {
            roots
                .add(cert.map_err(|e| problem(&e))?)
                .map_err(|e| problem(&e))?;
        }
        if roots.is_empty() {
            return Err(problem(&"no certificates in the file"));
        }
    } else {
        config.ssl_mode(SslMode::Disable);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Postgres(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(client))
}

/// Which server, and which run of it, a connection reaches: a write is durable only once a flush
/// on the very same run of the very same server succeeded after it (see [`Pg::sync`]).
/// A crash of one backend makes PostgreSQL reinitialise without a new start time, losing what
/// was committed asynchronously; an unlogged table is emptied by that crash recovery (and is
/// empty on a promoted standby), so the token the flusher keeps in it names the run too.
const INCARNATION: &str = "SELECT concat(inet_server_addr(), ':', inet_server_port(), '@', \
     pg_postmaster_start_time(), '#', (SELECT min(token) FROM survey_run)) AS incarnation";
/// Gives this run of the server its token, if crash recovery (or a promotion) left none.
const NEW_RUN: &str = "INSERT INTO survey_run (token) SELECT gen_random_uuid()::text \
     WHERE NOT EXISTS (SELECT 1 FROM survey_run)";

/// Servers writes committed on since the last flush, and whether a flush found itself on
/// another: then the next flush fails too, for writes whose tickets it covers.
#[derive(Default)]
struct Unflushed {
    servers: std::collections::HashSet<String>,
    poisoned: bool,
    /// Where the last flush that succeeded ran: a flush elsewhere cannot vouch for what was
    /// read or written there since (a replay answered from a record, too).
    last: Option<String>,
}

/// The advisory lock every write transaction takes first ("SURVEY" in ASCII).
const WRITE_LOCK: i64 = 0x5355_5256_4559;
/// The advisory lock that lets one node at a time create or migrate the tables.
const MIGRATE_LOCK: i64 = 0x5355_5256_4560;
/// Rows fetched by the first page of a scan; later pages grow to `MAX_PAGE`.
const FIRST_PAGE: usize = 64;
const MAX_PAGE: usize = 4096;

/// The schema, version by version; each runs once, in order, in one transaction.
/// Published migrations never change; a new tree is a new migration.
fn migrations() -> Vec<String> {
    let table = |tree: &str| {
        format!("CREATE TABLE \"{tree}\" (key bytea PRIMARY KEY, value bytea NOT NULL)")
    };
    let mut first: Vec<String> = TREES[..17].iter().map(|tree| table(tree)).collect();
    first.push("CREATE SEQUENCE survey_numbers".into());
    // Secrets every node needs alike (the token signing key); not a tree: never in a backup.
    first.push("CREATE TABLE survey_secrets (name text PRIMARY KEY, value text NOT NULL)".into());
    vec![
        first.join(";\n"),
        table(super::TRANSIENT),
        "CREATE UNLOGGED TABLE survey_run (token text NOT NULL)".into(),
    ]
}

/// The statements of one tree.
struct TreeSql {
    get: String,
    get_many: String,
    page_to: String,
    page_from: String,
    upsert: String,
    /// A restore's: into empty tables, where an existing key is an error, not an overwrite.
    insert: String,
    delete: String,
    all: String,
    count: String,
    last_key: String,
}

impl TreeSql {
    fn new(tree: &str) -> Self {
        let table = format!("\"{tree}\"");
        Self {
            get: format!("SELECT value FROM {table} WHERE key = $1"),
            get_many: format!("SELECT key, value FROM {table} WHERE key = ANY($1::bytea[])"),
            page_to: format!(
                "SELECT key, value FROM {table} WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"
            ),
            page_from: format!(
                "SELECT key, value FROM {table} WHERE key >= $1 ORDER BY key LIMIT $2"
            ),
            upsert: format!(
                "INSERT INTO {table} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            insert: format!(
                "INSERT INTO {table} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[])"
            ),
            delete: format!("DELETE FROM {table} WHERE key = ANY($1::bytea[])"),
            all: format!("SELECT key, value FROM {table} ORDER BY key"),
            count: format!("SELECT count(*) FROM {table}"),
            last_key: format!("SELECT key FROM {table} ORDER BY key DESC LIMIT 1"),
        }
    }
}

/// What the work handed to the connections' runtime shares.
struct Inner {
    pool: Pool,
    sql: Vec<TreeSql>,
}

pub struct Pg {
    inner: Arc<Inner>,
    /// The statements that make every earlier commit durable.
    sync: &'static str,
    /// Servers that writes committed on since the last flush began (see [`Pg::sync`]).
    unflushed: Mutex<Unflushed>,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropped from async code too (a server shutting down): never wait for the runtime there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A statement failed on a connection we had: the outcome of a write may be unknown (500; the
/// phone's retry replays).
fn failed(error: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let unavailable = error.is_closed()
        || error.code().is_some_and(|code| {
            // A standby or a primary being demoted (no writes here now), a server shutting down
            // or starting, a connection lost: nothing was committed, try again soon.
            *code == SqlState::READ_ONLY_SQL_TRANSACTION
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08")
        });
    if unavailable {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Postgres(error.to_string())
    }
}

/// A COMMIT that failed: unless the server refused it outright (a standby), its outcome is
/// unknown, which is a 500 (the phone's retry replays or stores it), never a 503.
fn commit_failed(error: tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code) if *code == tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Postgres(error.to_string()),
    }
}

/// Runs `wait` (a round trip to the database, a queue for the write lock). Called from a request
/// on the server's runtime, it must not hold one of its few worker threads: tokio hands that
/// worker's other requests to another thread meanwhile. (A current-thread runtime, as in tests,
/// cannot; there it simply waits.)
pub(in crate::store) fn off_the_runtime<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

impl Inner {
    /// A connection from the pool; none within the timeout means no usable primary (503).
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(crate::error::with_causes(&e)))
    }
}

impl Pg {
    /// Connects, creates or migrates the tables (one node at a time), and checks that commits
    /// can be made durable.
    pub fn connect(options: &PgOptions) -> Result<Arc<Self>, StoreError> {
        let mut config: tokio_postgres::Config =
            options.url.parse().map_err(|e: tokio_postgres::Error| {
                StoreError::Postgres(format!("SURVEY_STORE: {e}"))
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // A database that vanished without closing its connections (a dead machine, a cut
        // cable) is noticed within a minute, not the system's default two hours.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        config.application_name("survey-server");
        let tls = tls(&mut config, options.ca_file.as_deref())?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        // Built last: from here on `Pg` owns it, and its Drop never blocks an async caller.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()?;
        let mut pg = Self {
            inner: Arc::new(Inner {
                pool,
                sql: TREES.iter().map(|tree| TreeSql::new(tree)).collect(),
            }),
            sync: "",
            unflushed: Mutex::default(),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        };
        let inner = Arc::clone(&pg.inner);
        let synchronous_commit = pg.block(async move {
            let client = inner.client().await?;
            migrate(&client).await?;
            // This run's token before the first write notes where it committed (see INCARNATION).
            client.batch_execute(NEW_RUN).await.map_err(failed)?;
            let row = client
                .query_one("SHOW synchronous_commit", &[])
                .await
                .map_err(failed)?;
            Ok(row.get::<_, String>(0))
        })?;
        // A server set to `off`, `local` or `remote_write` would acknowledge writes a crash (of
        // the primary, or of the standby's machine) can lose: flushes ask for `on` then.
        // The flush must itself write WAL: a commit that wrote none (an xid alone) neither
        // flushes nor waits for a synchronous standby. A transactional logical message does both,
        // and leaves nothing behind in any table.
        pg.sync = if !matches!(synchronous_commit.as_str(), "on" | "remote_apply") {
            "BEGIN; SET LOCAL synchronous_commit TO on; SELECT pg_logical_emit_message(true, 'survey-server', 'flush'); COMMIT"
        } else {
            "BEGIN; SELECT pg_logical_emit_message(true, 'survey-server', 'flush'); COMMIT"
        };
        Ok(Arc::new(pg))
    }

    /// Runs `work` on the connections' runtime and waits for it.
    fn block<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = answer.send(work.await);
        });
        off_the_runtime(|| answered.recv().map_err(|_| StoreError::Closed)?)
    }

    pub fn get(&self, tree: usize, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_vec();
        self.block(async move {
            let client = inner.client().await?;
            get_on(&client, &inner, tree, &key).await
        })
    }

    pub fn count(&self, tree: usize) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.block(async move {
            let client = inner.client().await?;
            let statement = client
                .prepare_cached(&inner.sql[tree].count)
                .await
                .map_err(failed)?;
            let row = client.query_one(&statement, &[]).await.map_err(failed)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    /// The largest key of a tree (one index step, as the key is the primary key).
    pub fn last_key(&self, tree: usize) -> Result<Option<IVec>, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.block(async move {
            let client = inner.client().await?;
            let statement = client
                .prepare_cached(&inner.sql[tree].last_key)
                .await
                .map_err(failed)?;
            let row = client.query_opt(&statement, &[]).await.map_err(failed)?;
            Ok(row.map(|row| IVec::from(row.get::<_, Vec<u8>>(0))))
        })
    }

    pub fn get_many(&self, tree: usize, keys: &[Vec<u8>]) -> Result<Vec<Option<IVec>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let inner = Arc::clone(&self.inner);
        let wanted = keys.to_vec();
        let mut found: std::collections::HashMap<Vec<u8>, IVec> = self.block(async move {
            let client = inner.client().await?;
            let statement = client
                .prepare_cached(&inner.sql[tree].get_many)
                .await
                .map_err(failed)?;
            let rows = client.query(&statement, &[&wanted]).await.map_err(failed)?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    (
                        row.get::<_, Vec<u8>>(0),
                        IVec::from(row.get::<_, Vec<u8>>(1)),
                    )
                })
                .collect())
        })?;
        Ok(keys.iter().map(|key| found.remove(key)).collect())
    }

    /// Up to `limit` entries from `lower` (inclusive) to `upper` (exclusive, if any).
    fn page(
        &self,
        tree: usize,
        lower: Vec<u8>,
        upper: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<(IVec, IVec)>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block(async move {
            let client = inner.client().await?;
            let sql = &inner.sql[tree];
            let rows = match &upper {
                Some(upper) => {
                    let statement = client.prepare_cached(&sql.page_to).await.map_err(failed)?;
                    client.query(&statement, &[&lower, upper, &limit]).await
                }
                None => {
                    let statement = client
                        .prepare_cached(&sql.page_from)
                        .await
                        .map_err(failed)?;
                    client.query(&statement, &[&lower, &limit]).await
                }
            }
            .map_err(failed)?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    (
                        IVec::from(row.get::<_, Vec<u8>>(0)),
                        IVec::from(row.get::<_, Vec<u8>>(1)),
                    )
                })
                .collect())
        })
    }

    pub fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let inner = Arc::clone(&self.inner);
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.block(async move {
            let client = inner.client().await?;
            client
                .execute(
                    "INSERT INTO survey_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &candidate],
                )
                .await
                .map_err(failed)?;
            let row = client
                .query_one("SELECT value FROM survey_secrets WHERE name = $1", &[&name])
                .await
                .map_err(failed)?;
            Ok(row.get(0))
        })
    }

    pub fn next_number(&self) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.block(async move {
            let client = inner.client().await?;
            let row = client
                .query_one("SELECT nextval('survey_numbers')", &[])
                .await
                .map_err(failed)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
        })
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.block(async move {
            let client = inner.client().await?;
            let row = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
                .map_err(failed)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
        })
    }

    /// Makes every commit so far durable (see the module comment). A flush makes durable only
    /// what its own server committed: after a failover, or a restart of the server, a new
    /// connection reaches a server where writes committed with synchronous_commit off (on the
    /// old primary, or before the crash) may not be. So every write notes the server it
    /// committed on, and a flush that reaches another fails: their outcome is unknown (500),
    /// and the phone's retry stores them again or replays them.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (written, poisoned) = {
            let mut unflushed = self.unflushed.lock().unwrap_or_else(|p| p.into_inner());
            let poisoned = std::mem::take(&mut unflushed.poisoned);
            (std::mem::take(&mut unflushed.servers), poisoned)
        };
        let inner = Arc::clone(&self.inner);
        let sync = self.sync;
        let flushed = self.block(async move {
            let client = inner.client().await?;
            let messages = client
                .simple_query(&format!("{NEW_RUN}; {INCARNATION}; {sync}"))
                .await
                .map_err(failed)?;
            Ok(incarnation(&messages).unwrap_or_default())
        });
        let mut unflushed = self.unflushed.lock().unwrap_or_else(|p| p.into_inner());
        let flushed_on = match flushed {
            Ok(server) => server,
            Err(error) => {
                // The next flush must still answer for these writes.
                unflushed.servers.extend(written);
                unflushed.poisoned |= poisoned;
                return Err(error);
            }
        };
        let moved = unflushed
            .last
            .as_ref()
            .is_some_and(|last| *last != flushed_on);
        let elsewhere: Vec<&String> = written.iter().filter(|s| **s != flushed_on).collect();
        let problem = if !elsewhere.is_empty() {
            Some(format!(
                "writes committed on {elsewhere:?}, but the flush reached {flushed_on}"
            ))
        } else if moved {
            Some(format!(
                "the last flush ran on {:?}, this one on {flushed_on}",
                unflushed.last
            ))
        } else if poisoned {
            Some("the flush before this one reached another server".to_owned())
        } else {
            None
        };
        // Writes whose tickets the next flush covers may have been made before the move.
        unflushed.poisoned = !elsewhere.is_empty() || moved;
        unflushed.last = Some(flushed_on);
        match problem {
            Some(problem) => Err(StoreError::Unavailable(format!(
                "{problem} (a failover or a restart): the outcome of the writes it covers is unknown"
            ))),
            None => Ok(()),
        }
    }

    /// Notes the server a write committed on, before its ticket is issued.
    fn committed_on(&self, server: String) {
        self.unflushed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .servers
            .insert(server);
    }

    pub fn stamp_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let (key, value) = (vec![key.to_vec()], vec![value.to_vec()]);
        self.block(async move {
            let client = inner.client().await?;
            let meta = TREES.iter().position(|t| *t == "meta").unwrap_or_default();
            client
                .execute(&inner.sql[meta].upsert, &[&key, &value])
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    /// Every table read in one repeatable-read transaction: one instant, without stopping writers.
    pub fn snapshot(&self) -> Result<TreeEntries, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.block(async move {
            let client = inner.client().await?;
            let read = async {
                client
                    .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let mut trees = Vec::with_capacity(TREES.len());
                for (tree, sql) in TREES.iter().zip(&inner.sql) {
                    trees.push((*tree, client.query(&sql.all, &[]).await?));
                }
                client.batch_execute("COMMIT").await?;
                Ok(trees)
            }
            .await;
            let tables = match read {
                Ok(tables) => tables,
                Err(error) => {
                    // Never back into the pool in the middle of a transaction.
                    drop(Object::take(client));
                    return Err(failed(error));
                }
            };
            let mut trees = Vec::with_capacity(TREES.len());
            for (tree, rows) in tables {
                let entries = rows
                    .into_iter()
                    .map(|row| {
                        (
                            IVec::from(row.get::<_, Vec<u8>>(0)),
                            IVec::from(row.get::<_, Vec<u8>>(1)),
                        )
                    })
                    .collect();
                trees.push((tree.to_owned(), entries));
            }
            Ok(trees)
        })
    }

    pub fn transaction<T, R>(
        self: &Arc<Self>,
        numbers: usize,
        reads: &[(usize, &[u8])],
        write: impl Fn(&[TxTree<'_>], &[u64]) -> Result<T, Abort<R>>,
    ) -> Result<Result<T, R>, StoreError> {
        loop {
            match self.attempt(numbers, reads, &write) {
                Err(Abort::Conflict) => continue,
                Err(Abort::Refused(reason)) => return Ok(Err(reason)),
                Err(Abort::Broken(error)) => return Err(error),
                Ok(value) => return Ok(Ok(value)),
            }
        }
    }

    fn attempt<T, R>(
        self: &Arc<Self>,
        numbers: usize,
        reads: &[(usize, &[u8])],
        write: &impl Fn(&[TxTree<'_>], &[u64]) -> Result<T, Abort<R>>,
    ) -> Result<T, Abort<R>> {
        let inner = Arc::clone(&self.inner);
        let wanted: Vec<(usize, Vec<u8>)> = reads
            .iter()
            .map(|(tree, key)| (*tree, key.to_vec()))
            .collect();
        let (client, numbers, server, read) = self
            .block(async move {
                let client = inner.client().await?;
                match begin(&inner, &client, numbers, &wanted).await {
                    Ok((numbers, server, read)) => Ok((Arc::new(client), numbers, server, read)),
                    Err(error) => {
                        end(client, "ROLLBACK").await;
                        Err(failed(error))
                    }
                }
            })
            .map_err(Abort::Broken)?;
        let tx = Transaction {
            pg: Arc::clone(self),
            client: Some(client),
            server,
            read: RefCell::new(read),
            writes: RefCell::new(BTreeMap::new()),
        };
        let views: Vec<TxTree<'_>> = (0..TREES.len())
            .map(|tree| TxTree::Postgres(&tx, tree))
            .collect();
        let outcome = write(&views, &numbers);
        drop(views);
        match outcome {
            Ok(value) => {
                tx.commit().map_err(|e| match e {
                    TxError::Conflict => Abort::Conflict,
                    TxError::Storage(error) => Abort::Broken(error),
                })?;
                Ok(value)
            }
            Err(abort) => {
                tx.rollback();
                Err(abort)
            }
        }
    }
}

/// Entries (tree, key) a write transaction read as it began: their values, or `None` if absent.
type ReadAhead = HashMap<(usize, Vec<u8>), Option<Vec<u8>>>;

/// What a write transaction learns as it begins.
type Begun = (Vec<u64>, String, ReadAhead);

/// Begins a write transaction in one round trip (every statement pipelined): BEGIN, the write
/// lock, then, under it, the numbers, the server it runs on, and the entries the write will read
/// first (`reads`: e.g. the submission an insert must not overwrite), so that the lock is held
/// for one round trip less.
async fn begin(
    inner: &Inner,
    client: &Object,
    numbers: usize,
    reads: &[(usize, Vec<u8>)],
) -> Result<Begun, tokio_postgres::Error> {
    let lock = client
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await?;
    let draw = client
        .prepare_cached(
            "SELECT nextval('survey_numbers') FROM generate_series(1::bigint, $1::bigint)",
        )
        .await?;
    let whoami = client.prepare_cached(INCARNATION).await?;
    let mut gets = Vec::with_capacity(reads.len());
    for (tree, _) in reads {
        gets.push(client.prepare_cached(&inner.sql[*tree].get).await?);
    }
    let count = i64::try_from(numbers).unwrap_or(i64::MAX);
    let (begun, locked, drawn, server, found) = futures_util::future::join5(
        // A node that vanishes holding the write lock lets go of it within a minute.
        client.batch_execute(
            "BEGIN; SET LOCAL synchronous_commit TO off; \
             SET LOCAL idle_in_transaction_session_timeout TO '60s'",
        ),
        client.execute(&lock, &[&WRITE_LOCK]),
        client.query(&draw, &[&count]),
        client.query_one(&whoami, &[]),
        futures_util::future::join_all(
            reads
                .iter()
                .zip(&gets)
                .map(|((_, key), get)| async move { client.query_opt(get, &[key]).await }),
        ),
    )
    .await;
    begun?;
    locked?;
    let numbers = drawn?
        .iter()
        .map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
        .collect();
    let server: String = server?.get(0);
    let mut read = HashMap::with_capacity(reads.len());
    for ((tree, key), row) in reads.iter().zip(found) {
        read.insert(
            (*tree, key.clone()),
            row?.map(|row| row.get::<_, Vec<u8>>(0)),
        );
    }
    Ok((numbers, server, read))
}

/// One entry of `tree`, read on `client` (inside a transaction or not).
async fn get_on(
    client: &Object,
    inner: &Inner,
    tree: usize,
    key: &[u8],
) -> Result<Option<IVec>, StoreError> {
    let statement = client
        .prepare_cached(&inner.sql[tree].get)
        .await
        .map_err(failed)?;
    let row = client
        .query_opt(&statement, &[&key])
        .await
        .map_err(failed)?;
    Ok(row.map(|row| IVec::from(row.get::<_, Vec<u8>>(0))))
}

/// The server a statement batch that selected [`INCARNATION`] ran on.
fn incarnation(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) if row.columns().first()?.name() == "incarnation" => {
            row.get(0).map(str::to_owned)
        }
        _ => None,
    })
}

/// Ends a transaction that failed; a connection that cannot even do that leaves the pool.
async fn end(client: Object, statement: &str) {
    if client.batch_execute(statement).await.is_err() {
        let _ = Object::take(client);
    }
}

/// Creates or updates the tables, one node at a time.
async fn migrate(client: &Object) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({MIGRATE_LOCK});
             SET client_min_messages TO warning; -- not the notice that the table exists
             CREATE TABLE IF NOT EXISTS survey_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(failed)?;
    let outcome = async {
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM survey_schema_migrations",
                &[],
            )
            .await?;
        let applied = usize::try_from(row.get::<_, i32>(0)).unwrap_or_default();
        for (index, migration) in migrations().iter().enumerate().skip(applied) {
            tracing::info!(version = index + 1, "migrating the PostgreSQL schema");
            client
                .batch_execute(&format!(
                    "BEGIN; {migration}; INSERT INTO survey_schema_migrations (version) VALUES ({}); COMMIT",
                    index + 1
                ))
                .await?;
        }
        Ok(())
    }
    .await;
    if outcome.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    client
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"))
        .await
        .map_err(failed)?;
    outcome.map_err(failed)
}

/// A transaction's writes by (tree, key): the new value, or `None` for removed.
type Writes = BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>;
/// Keys and values to upsert, by tree.
type Upserts = BTreeMap<usize, (Vec<Vec<u8>>, Vec<Vec<u8>>)>;

/// A write transaction under way: it holds the write lock; its writes are kept here and sent
/// at commit, so a read sees the transaction's own writes first.
pub struct Transaction {
    pg: Arc<Pg>,
    /// `None` once committed or rolled back; a transaction dropped with it (a panic in a write)
    /// closes the connection, so it never goes back to the pool holding the write lock.
    client: Option<Arc<Object>>,
    /// The server (and run of it) the transaction is on.
    server: String,
    /// Entries read as the transaction began, under the lock.
    read: RefCell<ReadAhead>,
    writes: RefCell<Writes>,
}

impl Transaction {
    pub fn get(&self, tree: usize, key: &[u8]) -> Result<Option<IVec>, TxError> {
        if let Some(written) = self.writes.borrow().get(&(tree, key.to_vec())) {
            return Ok(written.as_deref().map(IVec::from));
        }
        if let Some(read) = self.read.borrow().get(&(tree, key.to_vec())) {
            return Ok(read.as_deref().map(IVec::from));
        }
        let inner = Arc::clone(&self.pg.inner);
        let client = self
            .client
            .clone()
            .ok_or(TxError::Storage(StoreError::Closed))?;
        let key = key.to_vec();
        self.pg
            .block(async move { get_on(&client, &inner, tree, &key).await })
            .map_err(TxError::Storage)
    }

    pub fn put(&self, tree: usize, key: &[u8], value: Option<&[u8]>) {
        self.writes
            .borrow_mut()
            .insert((tree, key.to_vec()), value.map(<[u8]>::to_vec));
    }

    fn commit(mut self) -> Result<(), TxError> {
        let mut upserts = Upserts::new();
        let mut deletes: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
        for ((tree, key), value) in self.writes.take() {
            match value {
                Some(value) => {
                    let (keys, values) = upserts.entry(tree).or_default();
                    keys.push(key);
                    values.push(value);
                }
                None => deletes.entry(tree).or_default().push(key),
            }
        }
        let inner = Arc::clone(&self.pg.inner);
        let client = self
            .client
            .take()
            .ok_or(TxError::Storage(StoreError::Closed))?;
        let pg = Arc::clone(&self.pg);
        let server = std::mem::take(&mut self.server);
        pg.block(async move {
            let sent = async {
                let mut writes = Vec::with_capacity(upserts.len() + deletes.len());
                for (tree, (keys, values)) in &upserts {
                    let statement = client.prepare_cached(&inner.sql[*tree].upsert).await?;
                    writes.push((statement, vec![keys, values]));
                }
                for (tree, keys) in &deletes {
                    let statement = client.prepare_cached(&inner.sql[*tree].delete).await?;
                    writes.push((statement, vec![keys]));
                }
                // Every statement and the COMMIT in one round trip (pipelined), while the write
                // lock is held. Should a statement fail, the COMMIT answers ROLLBACK and the
                // statement's error is what is reported.
                let executes = writes.iter().map(|(statement, params)| {
                    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                        .iter()
                        .map(|p| *p as &(dyn tokio_postgres::types::ToSql + Sync))
                        .collect();
                    let client = &client;
                    async move { client.execute(statement, &params).await }
                });
                let (executed, committed) = futures_util::future::join(
                    futures_util::future::join_all(executes),
                    client.batch_execute("COMMIT"),
                )
                .await;
                for result in executed {
                    result?;
                }
                committed
            }
            .await;
            match sent {
                Ok(()) => Ok(()),
                Err(error) => {
                    if let Some(client) = Arc::into_inner(client) {
                        end(client, "ROLLBACK").await;
                    }
                    Err(commit_failed(error))
                }
            }
        })
        .map_err(TxError::Storage)?;
        pg.committed_on(server);
        Ok(())
    }

    fn rollback(mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let _ = self.pg.block(async move {
            if let Some(client) = Arc::into_inner(client) {
                end(client, "ROLLBACK").await;
            }
            Ok(())
        });
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(object) = self.client.take().and_then(Arc::into_inner) {
            drop(Object::take(object));
        }
    }
}

/// Entries of a table in key order, fetched a page at a time as they are read.
pub struct Scan {
    pg: Arc<Pg>,
    tree: usize,
    /// Where the next page starts (inclusive); `None` once the last page was fetched.
    next: Option<Vec<u8>>,
    /// Where the scan ends (exclusive), if anywhere.
    upper: Option<Vec<u8>>,
    page: usize,
    buffer: VecDeque<(IVec, IVec)>,
}

/// The key right after `key` in byte order.
fn after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

impl Scan {
    pub fn new(pg: Arc<Pg>, tree: usize, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> Self {
        let next = match lower {
            Bound::Included(key) => key,
            Bound::Excluded(key) => after(&key),
            Bound::Unbounded => Vec::new(),
        };
        let upper = match upper {
            Bound::Included(key) => Some(after(&key)),
            Bound::Excluded(key) => Some(key),
            Bound::Unbounded => None,
        };
        Self {
            pg,
            tree,
            next: Some(next),
            upper,
            page: FIRST_PAGE,
            buffer: VecDeque::new(),
        }
    }
}

impl Iterator for Scan {
    type Item = Result<(IVec, IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.buffer.pop_front() {
            return Some(Ok(entry));
        }
        let from = self.next.take()?;
        let limit = self.page;
        self.page = (self.page * 4).min(MAX_PAGE);
        match self.pg.page(self.tree, from, self.upper.clone(), limit) {
            Err(error) => Some(Err(error)),
            Ok(rows) => {
                if rows.len() == limit {
                    self.next = rows.last().map(|(key, _)| after(key));
                }
                self.buffer = rows.into();
                self.buffer.pop_front().map(Ok)
            }
        }
    }
}

/// The one transaction a restore writes a whole backup in: nothing of it is visible, or kept,
/// unless the whole file checked out and [`Loader::finish`] ran.
pub struct Loader {
    pg: Arc<Pg>,
    client: Option<Arc<Object>>,
}

impl Pg {
    /// Begins a restore; `None` if the database already holds data.
    pub fn loader(self: &Arc<Self>) -> Result<Option<Loader>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let client = self.block(async move {
            let client = inner.client().await?;
            let mut any = Vec::with_capacity(TREES.len());
            for tree in TREES {
                any.push(format!("SELECT 1 FROM \"{tree}\""));
            }
            // Emptiness is checked inside the transaction, under the write lock: a node starting
            // meanwhile (or a second restore) waits, and then finds the data and writes nothing.
            let begun = async {
                client
                    .batch_execute(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                    ))
                    .await?;
                let check = format!("SELECT EXISTS ({})", any.join(" UNION ALL "));
                let occupied: bool = client.query_one(&check, &[]).await?.get(0);
                Ok::<_, tokio_postgres::Error>(occupied)
            }
            .await;
            match begun {
                Ok(false) => Ok(Some(Arc::new(client))),
                Ok(true) => {
                    end(client, "ROLLBACK").await;
                    Ok(None)
                }
                Err(error) => {
                    end(client, "ROLLBACK").await;
                    Err(failed(error))
                }
            }
        })?;
        Ok(client.map(|client| Loader {
            pg: Arc::clone(self),
            client: Some(client),
        }))
    }
}

impl Loader {
    /// Writes entries of the tree named `name`.
    pub fn load(&self, name: &str, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        let tree = TREES.iter().position(|t| *t == name).ok_or_else(|| {
            StoreError::Postgres(format!(
                "the backup has a tree {name} this server does not know"
            ))
        })?;
        let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = entries.into_iter().unzip();
        let inner = Arc::clone(&self.pg.inner);
        let client = self.client.clone();
        self.pg.block(async move {
            let client = client.ok_or(StoreError::Closed)?;
            client
                .execute(&inner.sql[tree].insert, &[&keys, &values])
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    /// Makes the restored data the database's, with numbers going on from `next_number`.
    pub fn finish(mut self, next_number: u64) -> Result<(), StoreError> {
        let client = self.client.take();
        let next = i64::try_from(next_number).unwrap_or(i64::MAX);
        self.pg.block(async move {
            let client = client.ok_or(StoreError::Closed)?;
            client
                .execute("SELECT setval('survey_numbers', $1, false)", &[&next])
                .await
                .map_err(failed)?;
            client.batch_execute("COMMIT").await.map_err(failed)
        })
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.pg.block(async move {
                if let Some(client) = Arc::into_inner(client) {
                    end(client, "ROLLBACK").await;
                }
                Ok(())
            });
        }
    }
}
