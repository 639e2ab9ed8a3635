//! Running `ip`, `nft`, `iptables`: a command's output, or an error naming the command and
//! what it printed.

use std::process::Stdio;

use tokio::process::Command;

use super::SetupError;

/// What a finished command said.
pub struct Ran {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error, trimmed.
    pub stderr: String,
}

impl Ran {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// `program args...`, as a log line or an error shows it.
pub fn shown(program: &str, args: &[&str]) -> String {
    let mut s = program.to_owned();
    for a in args {
        s.push(' ');
        if a.contains(' ') {
            s.push_str(&format!("{a:?}"));
        } else {
            s.push_str(a);
        }
    }
    s
}

/// Runs `program args...` with `input` on its standard input, and waits for it: its exit
/// code and output, whatever the code. An error only when it cannot be started.
pub async fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<Ran, SetupError> {
    let spawn_error = |source| SetupError::Spawn {
        program: program.to_owned(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(spawn_error)?;
    }
    let out = child.wait_with_output().await.map_err(spawn_error)?;
    Ok(Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Runs `program args...` and requires exit 0: its standard output.
pub async fn check(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, SetupError> {
    let ran = run(program, args, input).await?;
    if ran.ok() {
        Ok(ran.stdout)
    } else {
        Err(failed(program, args, &ran))
    }
}

/// The error of a command that exited non-zero.
pub fn failed(program: &str, args: &[&str], ran: &Ran) -> SetupError {
    SetupError::Command {
        command: shown(program, args),
        stderr: if ran.stderr.is_empty() {
            format!("exit code {:?}", ran.code)
        } else {
            ran.stderr.clone()
        },
    }
}
