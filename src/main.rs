//! The clusterdns binary: parse flags, start, serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clusterdns::config::{self, Config, LoadError};

fn parse() -> Result<Config, ExitCode> {
    match config::load(std::env::args_os()) {
        Ok(c) => Ok(c),
        Err(LoadError::Cli(e))
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) =>
        {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(LoadError::Cli(e)) => {
            // One clear line, not clap's usage block.
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("clusterdns: {}", line.trim_start_matches("error: "));
            Err(ExitCode::from(2))
        }
        Err(LoadError::File(e)) => {
            eprintln!("clusterdns: {e}");
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
    if config.print_config_reference {
        print!("{}", config::reference());
        return ExitCode::SUCCESS;
    }
    if config.print_config {
        print!("{}", config.loaded.to_yaml());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = clusterdns::logging::init(config.log_format, &config.log_level) {
        eprintln!("clusterdns: logging: {e}");
        return ExitCode::from(2);
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = config.config.as_ref().map(|p| p.display().to_string()),
        "starting"
    );

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
        tokio::select! {
            () = terminated() => {}
            why = running.fatal() => {
                eprintln!("clusterdns: {why}");
                running.shutdown().await;
                return ExitCode::FAILURE;
            }
        }
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
