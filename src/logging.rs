//! Logging: `tracing` to stdout as text or JSON, with a level that a configuration reload
//! can change.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// hickory-server logs two INFO lines per response; kept at warn unless asked.
const QUIET: &str = "hickory_server=warn,hickory_proto=error";

static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A `--log-level` value that is no filter.
    #[error(transparent)]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// A `RUST_LOG` value that is no filter.
    #[error("RUST_LOG {value:?}: {source}")]
    Env {
        /// The variable's value.
        value: String,
        /// Why it is no filter.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A subscriber was installed already.
    #[error(transparent)]
    Init(#[from] tracing_subscriber::util::TryInitError),
    /// The installed subscriber is gone.
    #[error(transparent)]
    Reload(#[from] tracing_subscriber::reload::Error),
}

/// The filter for a `--log-level` value.
pub fn filter(level: &str) -> Result<EnvFilter, LogError> {
    Ok(EnvFilter::try_new(format!("{QUIET},{level}"))?)
}

/// Checks a `--log-level` value (tracing's EnvFilter syntax); clap's value parser, which
/// wants its errors as text.
pub fn parse_level(level: &str) -> Result<String, String> {
    filter(level)
        .map(|_| level.to_owned())
        .map_err(|e| e.to_string())
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level` (and reloads).
pub fn init(format: LogFormat, level: &str) -> Result<(), LogError> {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let initial = match &from_env {
        Some(v) => EnvFilter::try_new(v).map_err(|source| LogError::Env {
            value: v.clone(),
            source,
        })?,
        None => filter(level)?,
    };
    let (filter, handle) = reload::Layer::new(initial);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stdout)
                    .with_ansi(ansi),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stdout),
            )
            .try_init(),
    };
    result?;
    if from_env.is_none() {
        let _ = HANDLE.set(handle);
    }
    Ok(())
}

/// Changes the level of the installed subscriber (nothing when none is installed, or when
/// `RUST_LOG` set it).
pub fn set_level(level: &str) -> Result<(), LogError> {
    let Some(handle) = HANDLE.get() else {
        return Ok(());
    };
    let f = filter(level)?;
    Ok(handle.reload(f)?)
}

/// An error and its causes as one line, each cause once: a cause whose text the line holds
/// already (an error that prints its source) is not repeated. kube's connection errors say
/// only `client error (Connect)`; why (a certificate refused, a connection refused) is below.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn error_chain_names_each_cause_once() {
        let io = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let top = anyhow::Error::new(io).context("client error (Connect)");
        let e: &(dyn std::error::Error + 'static) = top.as_ref();
        assert_eq!(
            error_chain(e),
            "client error (Connect): invalid peer certificate: UnknownIssuer"
        );
        let repeating = anyhow::anyhow!("refused: no route").context("refused: no route");
        assert_eq!(error_chain(repeating.as_ref()), "refused: no route");
    }
}
