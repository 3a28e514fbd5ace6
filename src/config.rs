//! Every setting: a command-line flag and a `SURVEY_*` environment variable, with safe defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::Limits;
use crate::attachments::Allowed;
use crate::attachments::uploads::{DEFAULT_EXPIRY, DEFAULT_MAX_BYTES};

/// survey-server: the backend smartphone surveys run on.
///
/// Phones submit questionnaires; the server validates each against its form's JSON Schema,
/// stores it durably in an embedded database, and answers with a receipt.
#[derive(Parser, Debug)]
#[command(
    name = "survey-server",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve`, which is also what runs with no subcommand.
    #[command(flatten)]
    pub serve: ServeConfig,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(Box<ServeConfig>),
    /// Play the county's field team against a running server: field workers, phones, messy data.
    Simulate(SimulateConfig),
    /// Back up a running server into one file, checked before it is kept:
    /// `survey-server backup --out /var/backups/survey-$(date +%F).backup < password-file`.
    Backup(BackupConfig),
    /// Build a new data directory from a backup file (the server must not be using that directory).
    Restore {
        /// A file made by `survey-server backup`.
        file: PathBuf,
        /// The new data directory; it must not hold a database yet.
        #[arg(long, env = "SURVEY_DATA_DIR")]
        data_dir: PathBuf,
        /// Where the attachment files go (default: <data dir>/attachments); it must hold none yet.
        #[arg(long, env = "SURVEY_ATTACHMENTS_DIR")]
        attachments_dir: Option<PathBuf>,
        /// `--store postgres://…` restores into that (empty) database instead of the data directory.
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Copy a county into an empty PostgreSQL database, from a data directory no server is
    /// using or from a backup file, and verify the copy (safe to run again):
    /// `survey-server copy-store --from /var/lib/survey-server --store-file /etc/survey-server/store-url --attachments-dir /srv/survey-attachments`.
    CopyStore {
        /// A stopped server's data directory, or a file made by `survey-server backup`.
        #[arg(long)]
        from: PathBuf,
        /// The attachments directory of a data directory (default: <from>/attachments).
        #[arg(long)]
        from_attachments: Option<PathBuf>,
        /// The database to copy into (a `postgres://` URL); default: --store / --store-file.
        #[arg(long)]
        to: Option<StoreChoice>,
        /// The attachments directory the API nodes share, where the files go.
        #[arg(long, env = "SURVEY_ATTACHMENTS_DIR")]
        attachments_dir: PathBuf,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Print the JSON Schema an XLSForm workbook (`.xlsx` or `.xls`) publishes as, or why it
    /// cannot be published (each problem at `/<sheet>/<row>/<column>`, exit status 1).
    Xlsform {
        /// The workbook.
        file: PathBuf,
        /// The language of the problems: zh or en.
        #[arg(long, default_value = "zh")]
        lang: String,
    },
    /// Manage users while the server is stopped (passwords are read from standard input).
    User {
        /// The server's data directory.
        #[arg(long, env = "SURVEY_DATA_DIR", default_value = "./data", global = true)]
        data_dir: PathBuf,
        /// `--store postgres://…` (or SURVEY_STORE, SURVEY_STORE_FILE) manages the users of that
        /// database instead; servers may keep running then.
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SimulateConfig {
    /// The server to play against.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin who creates the field workers.
    #[arg(long, default_value = "admin")]
    pub admin_user: String,
    /// That admin's password.
    #[arg(long, env = "SURVEY_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    /// The same seed makes the same county.
    #[arg(long, default_value_t = 2017)]
    pub seed: u64,
    /// Share of the county to make: 1.0 is all 27,211 labourers, 0.1 a tenth.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Phones uploading at once.
    #[arg(long, default_value_t = 16)]
    pub phones: usize,
    /// Submissions per offline-queue batch upload (at most the server's SURVEY_MAX_BATCH).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// 1: the first round. 2: a year later, against a server the first round was played on,
    /// the same households again as `labour-survey-2027`, prefilled from the first round.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub round: u8,
    /// In the second round, the share of labourers who have moved away since.
    #[arg(long, default_value_t = 0.05)]
    pub moved: f64,
}

#[derive(Args, Debug, Clone)]
pub struct BackupConfig {
    /// Where to write the backup (written to `<out>.partial`, checked, then renamed).
    #[arg(long)]
    pub out: PathBuf,
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An admin account to take it with.
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// That account's password; read from the first line of standard input when not set.
    #[arg(long, env = "SURVEY_BACKUP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Create a user: `echo "$PASSWORD" | survey-server user add wei --role field_worker --display-name 韦秀英 --scope 思林镇`.
    Add {
        username: String,
        /// field_worker, supervisor, analyst or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: String,
        /// Places (e.g. townships) the user is limited to, comma-separated; omit for everywhere.
        #[arg(long, value_delimiter = ',')]
        scope: Option<Vec<String>>,
    },
    /// Set a user's password (ends their sessions).
    SetPassword { username: String },
    /// Disable a user (ends their sessions; they can no longer sign in).
    Disable { username: String },
}

impl Cli {
    /// What to run; with no subcommand, the server.
    pub fn into_command(self) -> Command {
        self.command
            .unwrap_or_else(|| Command::Serve(Box::new(self.serve)))
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address and port to listen on. Keep it on 127.0.0.1 behind a TLS reverse proxy.
    #[arg(long, env = "SURVEY_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the database and server files; created if missing. Back this up.
    #[arg(long, env = "SURVEY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory of questionnaire JSON Schemas (`*.json`) published at start-up.
    #[arg(long, env = "SURVEY_SCHEMAS_DIR", default_value = "./schemas")]
    pub schemas_dir: PathBuf,

    /// Largest request body, in bytes, for one submission or form (a questionnaire is a few KiB).
    #[arg(long, env = "SURVEY_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,

    /// Most submissions in one batch upload (a phone's offline queue).
    #[arg(long, env = "SURVEY_MAX_BATCH", default_value_t = Limits::default().max_batch)]
    pub max_batch: usize,

    /// Largest batch request body, in bytes; each item is still held to --max-body-bytes.
    #[arg(long, env = "SURVEY_MAX_BATCH_BYTES", default_value_t = Limits::default().max_batch_bytes)]
    pub max_batch_bytes: usize,

    /// Largest register (CSV, `PUT /api/v1/forms/{form}/registry`), in bytes; raise the proxy's
    /// body limit for that route to match.
    #[arg(long, env = "SURVEY_MAX_REGISTRY_BYTES", default_value_t = Limits::default().max_registry_bytes)]
    pub max_registry_bytes: u64,

    /// Seconds a request body may take to arrive before the request is refused (408).
    #[arg(long, env = "SURVEY_UPLOAD_DEADLINE", default_value_t = Limits::default().upload_deadline.as_secs())]
    pub upload_deadline: u64,

    /// Seconds a client may take to send a request's headers once it has begun; then the
    /// connection is closed. The reverse proxy is the first line; this holds without one.
    #[arg(long, env = "SURVEY_HEADER_TIMEOUT", default_value_t = Limits::default().header_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,

    /// Seconds a connection may stay open with no request in progress; then it is closed.
    #[arg(long, env = "SURVEY_IDLE_TIMEOUT", default_value_t = Limits::default().idle_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,

    /// Ed25519 private key (PKCS#8 PEM) that signs access tokens. Default: generated on first start
    /// as <data dir>/jwt-ed25519.pem (mode 0600).
    #[arg(long, env = "SURVEY_JWT_KEY_FILE")]
    pub jwt_key_file: Option<PathBuf>,

    /// Access token lifetime in seconds (default 15 minutes).
    #[arg(long, env = "SURVEY_ACCESS_TTL", default_value_t = 15 * 60)]
    pub access_ttl: u64,

    /// Refresh token lifetime in seconds (default 30 days: phones stay offline for days).
    #[arg(long, env = "SURVEY_REFRESH_TTL", default_value_t = 30 * 24 * 60 * 60)]
    pub refresh_ttl: u64,

    /// Seconds after a refresh during which the spent refresh token, presented again (a phone
    /// that lost the answer on a bad connection), gets the same new pair instead of ending the
    /// login. After that, or once the new refresh token was used, reuse revokes the login.
    #[arg(long, env = "SURVEY_REFRESH_GRACE", default_value_t = 60)]
    pub refresh_grace: u64,

    /// Password for the `admin` user created on first start. Default: generated and written to
    /// <data dir>/initial-admin-password (mode 0600). Ignored once any user exists.
    #[arg(long, env = "SURVEY_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Reverse proxies in front of the server: addresses or CIDR ranges, comma-separated
    /// (e.g. `127.0.0.1,::1` or a container network such as `172.30.0.0/24`). For requests
    /// from them, the client's address for login throttling is taken from `X-Forwarded-For`;
    /// from anyone else that header is ignored, so it cannot be forged.
    #[arg(long, env = "SURVEY_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: AddressList,

    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Most memory, in MiB, the database may use to cache pages (sled's cache).
    #[arg(long, env = "SURVEY_CACHE_MB", default_value_t = crate::store::DEFAULT_CACHE_MB)]
    pub cache_mb: u64,

    /// Serve `/metrics` on this address only (e.g. 127.0.0.1:9090 for Prometheus) instead of on
    /// the API listener.
    #[arg(long, env = "SURVEY_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Log lines as human-readable `text` or one JSON object per line (`json`), on standard error.
    #[arg(long, env = "SURVEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Directory for attachment files (photos, signatures, recordings), kept once each by their
    /// SHA-256. Default: <data dir>/attachments. Back this up with the data directory.
    #[arg(long, env = "SURVEY_ATTACHMENTS_DIR")]
    pub attachments_dir: Option<PathBuf>,

    /// Largest attachment, in bytes (default 20 MiB); larger uploads are refused at creation.
    #[arg(long, env = "SURVEY_MAX_ATTACHMENT_BYTES", default_value_t = DEFAULT_MAX_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_attachment_bytes: u64,

    /// Seconds an unfinished upload is kept for its phone to resume (default 24 hours).
    #[arg(long, env = "SURVEY_UPLOAD_EXPIRY", default_value_t = DEFAULT_EXPIRY.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_expiry: u64,

    /// Attachment types this server accepts, comma-separated (default: all it can check:
    /// image/jpeg, image/png, image/webp, audio/webm, audio/ogg, audio/mp4, audio/mpeg,
    /// application/pdf).
    #[arg(long, env = "SURVEY_ATTACHMENT_TYPES", default_value_t = Allowed::default())]
    pub attachment_types: Allowed,

    /// Let webhooks go to loopback, private and link-local addresses, and over plain http://
    /// (receivers on the county's intranet). Cloud metadata addresses stay refused.
    #[arg(long, env = "SURVEY_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// A PEM file of CA certificates webhook receivers' TLS may chain to, beside the public
    /// roots (an intranet CA).
    #[arg(long, env = "SURVEY_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,

    /// Milliseconds before a failed webhook delivery's first retry; each retry doubles it (with
    /// jitter), up to an hour, for 24 hours.
    #[arg(long, env = "SURVEY_WEBHOOK_RETRY_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_retry_ms: u64,

    /// The county's time zone (IANA name): where a day begins and ends in progress counts.
    #[arg(long, env = "SURVEY_TIMEZONE", default_value = "Asia/Shanghai")]
    pub timezone: CountyZone,
}

/// An IANA time zone, known to the time zone database at start-up (else the server refuses to start).
#[derive(Clone, Debug)]
pub struct CountyZone(pub jiff::tz::TimeZone);

impl std::str::FromStr for CountyZone {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        jiff::tz::TimeZone::get(name)
            .map(Self)
            .map_err(|_| format!("{name:?} is not a time zone name such as Asia/Shanghai"))
    }
}

/// Comma-separated IP addresses or CIDR ranges (an address alone is a range of one); empty
/// means none (so `SURVEY_TRUSTED_PROXIES=` is allowed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressList(pub Vec<IpNet>);

impl std::str::FromStr for AddressList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{part:?} is not an IP address or a CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_zone_must_be_known() {
        assert!("Asia/Shanghai".parse::<CountyZone>().is_ok());
        assert!("Mars/Olympus_Mons".parse::<CountyZone>().is_err());
    }

    #[test]
    fn no_subcommand_means_serve_with_the_defaults() {
        let Command::Serve(config) = Cli::parse_from(["survey-server"]).into_command() else {
            panic!("not serve");
        };
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.max_batch, 500);
    }

    #[test]
    fn flags_work_with_and_without_the_serve_subcommand() {
        let serve = |args: &[&str]| match Cli::parse_from(args).into_command() {
            Command::Serve(config) => config.max_batch,
            other => panic!("{other:?}"),
        };
        assert_eq!(serve(&["survey-server", "--max-batch", "7"]), 7);
        assert_eq!(serve(&["survey-server", "serve", "--max-batch", "7"]), 7);
    }

    #[test]
    fn connection_timeouts_default_to_15_and_30_seconds_and_cannot_be_zero() {
        let Command::Serve(config) = Cli::parse_from(["survey-server"]).into_command() else {
            panic!("not serve");
        };
        assert_eq!((config.header_timeout, config.idle_timeout), (15, 30));
        assert!(Cli::try_parse_from(["survey-server", "--idle-timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["survey-server", "--header-timeout", "0"]).is_err());
    }

    #[test]
    fn trusted_proxies_are_a_comma_separated_list_that_may_be_empty() {
        let serve = |args: &[&str]| match Cli::parse_from(args).into_command() {
            Command::Serve(config) => config.trusted_proxies.0,
            other => panic!("{other:?}"),
        };
        assert!(serve(&["survey-server"]).is_empty());
        assert!(serve(&["survey-server", "--trusted-proxies", ""]).is_empty());
        let list = serve(&[
            "survey-server",
            "--trusted-proxies",
            "127.0.0.1, ::1, 172.30.0.0/24",
        ]);
        assert_eq!(list.len(), 3);
        assert!(list[0].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(list[2].contains(&"172.30.0.9".parse::<std::net::IpAddr>().unwrap()));
        assert!(!list[2].contains(&"172.30.1.9".parse::<std::net::IpAddr>().unwrap()));
        assert!(Cli::try_parse_from(["survey-server", "--trusted-proxies", "proxy"]).is_err());
        assert!(
            Cli::try_parse_from(["survey-server", "--trusted-proxies", "10.0.0.0/33"]).is_err()
        );
    }

    #[test]
    fn user_add_takes_a_comma_separated_scope() {
        let command = Cli::parse_from([
            "survey-server",
            "user",
            "add",
            "wei",
            "--role",
            "field_worker",
            "--display-name",
            "韦",
            "--scope",
            "思林镇,平马镇",
        ]);
        let Some(Command::User {
            action: UserAction::Add { scope, .. },
            ..
        }) = command.command
        else {
            panic!("not user add");
        };
        assert_eq!(scope, Some(vec!["思林镇".to_owned(), "平马镇".to_owned()]));
    }
}

/// Which engine keeps the data (`--store`).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// sled, embedded, under the data directory.
    Sled,
    /// PostgreSQL at this URL.
    Postgres(String),
}

impl std::str::FromStr for StoreChoice {
    type Err = String;

    /// Never fails: a parser's error would print the value, and a mistyped URL holds a
    /// password. [`DatabaseSettings::choice`] checks it, without showing it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "sled" {
            Ok(Self::Sled)
        } else {
            Ok(Self::Postgres(text.to_owned()))
        }
    }
}

/// Never prints a URL's password (settings are logged).
impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sled => f.write_str("sled"),
            Self::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl DatabaseSettings {
    /// The store these settings name: --store-file's URL, else --store.
    pub fn choice(&self) -> Result<StoreChoice, String> {
        let Some(path) = &self.store_file else {
            return checked(self.store.clone(), "SURVEY_STORE (--store)");
        };
        let shown = path.display();
        let metadata =
            std::fs::metadata(path).map_err(|e| format!("SURVEY_STORE_FILE {shown}: {e}"))?;
        if std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o077 != 0 {
            return Err(format!(
                "SURVEY_STORE_FILE {shown} holds a password: make it readable by its owner only (chmod 600)"
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("SURVEY_STORE_FILE {shown}: {e}"))?;
        match text.trim().parse()? {
            StoreChoice::Sled => Err(format!(
                "SURVEY_STORE_FILE {shown}: expected a postgres:// URL"
            )),
            postgres => checked(postgres, &format!("SURVEY_STORE_FILE {shown}")),
        }
    }
}

/// `sled`, or a URL of PostgreSQL's; the value itself is never shown.
fn checked(choice: StoreChoice, from: &str) -> Result<StoreChoice, String> {
    match &choice {
        StoreChoice::Postgres(url)
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") =>
        {
            Err(format!(
                "{from}: expected `sled` or a postgres:// URL (the value is not shown: it may hold a password)"
            ))
        }
        _ => Ok(choice),
    }
}

/// Which database keeps the data, and how to reach PostgreSQL (`serve`, `restore`).
#[derive(Args, Debug, Clone)]
pub struct DatabaseSettings {
    /// Where the data lives: `sled` (embedded, under --data-dir: the default) or a
    /// `postgres://user:password@host:port/db` URL (several hosts and
    /// `target_session_attrs=read-write` for a primary with standbys). Prefer --store-file for a
    /// URL with a password: this value is visible in the process list.
    #[arg(
        long,
        env = "SURVEY_STORE",
        default_value = "sled",
        global = true,
        hide_env_values = true
    )]
    pub store: StoreChoice,

    /// A file holding the `postgres://` URL (mode 0600: readable by its owner only), so the
    /// password stays out of unit files and the process list. Wins over --store.
    #[arg(long, env = "SURVEY_STORE_FILE", global = true)]
    pub store_file: Option<PathBuf>,

    /// PostgreSQL connections this process keeps at most.
    #[arg(long, env = "SURVEY_PG_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub pg_pool_size: u64,

    /// Seconds to wait for a PostgreSQL connection (opening one, or a free one from the pool)
    /// before answering 503 `not_ready`.
    #[arg(long, env = "SURVEY_PG_CONNECT_TIMEOUT", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub pg_connect_timeout: u64,

    /// PEM file of the certificate authorities that sign the database server's certificate,
    /// for a URL with `sslmode=require` (default: the system's, /etc/ssl/certs). The server's
    /// certificate and host name are always verified; without `sslmode=require` nothing is
    /// encrypted.
    #[arg(long, env = "SURVEY_PG_CA_FILE", global = true)]
    pub pg_ca_file: Option<PathBuf>,
}

impl DatabaseSettings {
    /// How to reach PostgreSQL at `url` with these settings.
    pub fn pg_options(&self, url: String) -> crate::store::PgOptions {
        crate::store::PgOptions {
            url,
            pool_size: usize::try_from(self.pg_pool_size).unwrap_or(16),
            connect_timeout: std::time::Duration::from_secs(self.pg_connect_timeout),
            ca_file: self.pg_ca_file.clone(),
        }
    }
}
