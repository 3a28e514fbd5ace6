//! Every setting: a command-line flag and a `SURVEY_*` environment variable, with safe defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Serve(ServeConfig),
}

impl Cli {
    /// What to run; with no subcommand, the server.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
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
    #[arg(long, env = "SURVEY_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most submissions in one batch upload (a phone's offline queue).
    #[arg(long, env = "SURVEY_MAX_BATCH", default_value_t = 500)]
    pub max_batch: usize,

    /// Largest batch request body, in bytes; each item is still held to --max-body-bytes.
    #[arg(long, env = "SURVEY_MAX_BATCH_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_batch_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_the_defaults() {
        let Command::Serve(config) = Cli::parse_from(["survey-server"]).into_command();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.max_batch, 500);
    }

    #[test]
    fn flags_work_with_and_without_the_serve_subcommand() {
        let Command::Serve(a) =
            Cli::parse_from(["survey-server", "--max-batch", "7"]).into_command();
        let Command::Serve(b) =
            Cli::parse_from(["survey-server", "serve", "--max-batch", "7"]).into_command();
        assert_eq!((a.max_batch, b.max_batch), (7, 7));
    }
}
