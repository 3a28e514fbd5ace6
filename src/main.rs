use std::process::ExitCode;

/// Requests and exports allocate many small short-lived values on several threads; mimalloc
/// serves that pattern markedly faster than the system allocator (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use survey_server::config::{
    BackupConfig, Cli, Command, DatabaseSettings, LogFormat, ServeConfig, SimulateConfig,
    StoreChoice,
};
use survey_server::{AppState, serve};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().into_command();
    let format = match &command {
        Command::Serve(config) => config.log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    let result = match command {
        Command::Serve(config) => run_server(*config).await,
        Command::Simulate(config) => simulate(config).await,
        Command::Backup(config) => backup(config).await,
        Command::Restore {
            file,
            data_dir,
            attachments_dir,
            database,
        } => restore(&file, &data_dir, attachments_dir.as_deref(), &database),
        Command::CopyStore {
            from,
            from_attachments,
            to,
            attachments_dir,
            database,
        } => survey_server::cli::run_copy_store(
            &from,
            from_attachments.as_deref(),
            to,
            &attachments_dir,
            &database,
        )
        .map(|message| println!("{message}")),
        Command::Xlsform { file, lang } => {
            survey_server::cli::run_xlsform(&file, &lang).map(|schema| println!("{schema}"))
        }
        Command::User {
            data_dir,
            database,
            action,
        } => survey_server::cli::run_user_command(&data_dir, &database, action)
            .await
            .map(|message| println!("{message}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("survey-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to standard error; `SURVEY_LOG` filters them (default `info`).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SURVEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in journald or a log file.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // One object per line; the request span (its id) rides along on every line of a request.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run_server(config: ServeConfig) -> Result<(), String> {
    let state = AppState::open(&config).await.map_err(|e| e.to_string())?;
    let mut metrics_address = None;
    if let Some(bind) = config.metrics_bind {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| format!("cannot listen on {bind} for metrics: {e}"))?;
        metrics_address = Some(listener.local_addr().map_err(|e| e.to_string())?);
        let metrics = survey_server::metrics_app(state.clone());
        // Ends with the process; a scrape cut off by shutdown is simply retried.
        tokio::spawn(survey_server::serve_router(listener, metrics, state.limits));
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let forms: Vec<String> = state
        .forms
        .all()
        .iter()
        .filter_map(|versions| versions.last())
        .map(|current| {
            format!(
                "{} (version {})",
                current.stored.form, current.stored.version
            )
        })
        .collect();
    println!("survey-server listening on http://{address}");
    println!(
        "  data: {}   forms: {}",
        config.data_dir.display(),
        forms.join(", ")
    );
    println!("  try:  curl http://{address}/api/v1/forms");
    if let Some(address) = metrics_address {
        println!("  metrics: http://{address}/metrics");
    }
    serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server stopped: {e}"))?;
    tracing::info!("stopped cleanly; everything acknowledged is on disk");
    Ok(())
}

async fn simulate(config: SimulateConfig) -> Result<(), String> {
    if config.round == 2 {
        return simulate_round_two(config).await;
    }
    let plan = survey_server::simulate::plan::generate(config.seed, config.scale);
    println!(
        "simulating {} households ({} labourers) with seed {} against {}",
        plan.truth.households, plan.truth.labourers, config.seed, config.server
    );
    let settings = simulate_settings(&config);
    let report = survey_server::simulate::run(plan, &settings).await?;
    println!("{}", report.summary());
    Ok(())
}

fn simulate_settings(config: &SimulateConfig) -> survey_server::simulate::Settings {
    survey_server::simulate::Settings {
        server: config.server.trim_end_matches('/').to_owned(),
        admin_user: config.admin_user.clone(),
        admin_password: config.admin_password.clone(),
        phones: config.phones,
        batch: config.batch,
        progress: true,
    }
}

async fn simulate_round_two(config: SimulateConfig) -> Result<(), String> {
    if !(0.0..=1.0).contains(&config.moved) {
        return Err("--moved is a share between 0 and 1".into());
    }
    let settings = simulate_settings(&config);
    let truth = survey_server::simulate::round2::run(&settings, config.seed, config.moved).await?;
    println!(
        "second round ({}): {} households, {} labourers visited again; {} moved away; {} of those still here employed",
        survey_server::simulate::round2::FORM,
        truth.households,
        truth.labourers,
        truth.moved,
        truth.employed
    );
    Ok(())
}

fn restore(
    file: &std::path::Path,
    data_dir: &std::path::Path,
    attachments_dir: Option<&std::path::Path>,
    database: &DatabaseSettings,
) -> Result<(), String> {
    match database.choice()? {
        StoreChoice::Sled => survey_server::backup::restore(file, data_dir, attachments_dir)
            .map(|summary| println!("restored into {}: {summary}", data_dir.display())),
        StoreChoice::Postgres(url) => {
            let options = database.pg_options(url);
            survey_server::backup::restore_to_postgres(file, &options, data_dir, attachments_dir)
                .map(|summary| println!("restored into PostgreSQL: {summary}"))
        }
    }
}

async fn backup(config: BackupConfig) -> Result<(), String> {
    let password = match config.password {
        Some(password) => password,
        None => survey_server::cli::read_password()?,
    };
    let source = survey_server::backup::Source {
        server: config.server,
        username: config.username,
        password,
    };
    let summary = survey_server::backup::fetch(&source, &config.out).await?;
    println!("backup written to {}: {summary}", config.out.display());
    Ok(())
}

/// Ctrl-C or SIGTERM (systemd's stop) begins a graceful shutdown.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
