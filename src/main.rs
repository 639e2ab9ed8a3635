//! The clusterdns binary: parse flags, start, serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use clusterdns::config::Config;
use tracing_subscriber::EnvFilter;

fn parse() -> Result<Config, ExitCode> {
    match Config::try_parse() {
        Ok(c) => Ok(c),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            // One clear line, not clap's usage block.
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("clusterdns: {}", line.trim_start_matches("error: "));
            Err(ExitCode::from(2))
        }
    }
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    let config = match parse() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // hickory-server logs two INFO lines per response; keep it at warn unless asked.
    let filter = EnvFilter::try_from_default_env().or_else(|_| {
        EnvFilter::try_new(format!(
            "hickory_server=warn,hickory_proto=error,{}",
            config.log_level
        ))
    });
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("clusterdns: --log-level {:?}: {e}", config.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clusterdns: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match clusterdns::app::start(&config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("clusterdns: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        terminated().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
