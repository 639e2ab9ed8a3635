//! The configuration file: `load` reads the command line and the `--config` YAML file it
//! names (each key through its flag's own parser, the command line winning), and keeps what
//! it loaded (`Loaded`) for a reload and `--print-config`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use serde_yaml_ng::Value;

use super::flags::{CLI_ONLY, Config, possible_values};

/// How the configuration was loaded: what a reload repeats, and what `--print-config` prints.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The command line, program name first.
    pub args: Vec<OsString>,
    /// Every file key with the value in effect, in flag order.
    pub effective: Vec<(String, Value)>,
}

impl Loaded {
    /// The value in effect for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.effective
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The keys whose value differs between `self` and `other`.
    pub fn changed(&self, other: &Loaded) -> Vec<String> {
        self.effective
            .iter()
            .filter(|(k, v)| other.get(k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The effective configuration as YAML, loadable again by `--config`.
    pub fn to_yaml(&self) -> String {
        let map: serde_yaml_ng::Mapping = self
            .effective
            .iter()
            .map(|(k, v)| (Value::String(k.clone()), v.clone()))
            .collect();
        serde_yaml_ng::to_string(&map).unwrap_or_default()
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command line (including `--help` and `--version`, which are not failures).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The configuration file: the message names the file, the key, the value and why.
    #[error("{0}")]
    File(String),
}

/// The configuration from a command line and the `--config` file it names: every flag has a
/// key of the same long name, and the command line wins over the file. Each key's value goes
/// through the flag's own parser, so the file accepts exactly what the flag does.
pub fn load<I, T>(args: I) -> Result<Config, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cmd = Config::command();
    let cli = cmd.clone().try_get_matches_from(&args)?;
    let mut argv = vec![args.first().cloned().unwrap_or_else(|| "clusterdns".into())];
    let file = cli.get_one::<PathBuf>("config").cloned();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::File(format!("{}: cannot read: {e}", path.display())))?;
        for (id, key_args) in file_args(path, &text, &cmd)? {
            if cli.value_source(&id) != Some(ValueSource::CommandLine) {
                argv.extend(key_args);
            }
        }
    }
    argv.extend(args.iter().skip(1).cloned());
    let parsed = cmd
        .clone()
        .try_get_matches_from(&argv)
        .and_then(|m| Config::from_arg_matches(&m).map(|c| (c, m)));
    let (mut config, matches) = match (parsed, &file) {
        (Ok(p), _) => p,
        (Err(e), None) => return Err(e.into()),
        (Err(e), Some(path)) => {
            return Err(LoadError::File(format!(
                "{} with the command line: {}",
                path.display(),
                clap_reason(&e)
            )));
        }
    };
    config.loaded = Loaded {
        args,
        effective: effective(&cmd, &matches),
    };
    Ok(config)
}

impl Config {
    /// The same command line loaded again: the file re-read, validated as at start.
    pub fn reload(&self) -> Result<Config, LoadError> {
        let args = if self.loaded.args.is_empty() {
            // Built without `load` (e.g. `Config::parse_from`): the file alone.
            let mut a: Vec<OsString> = vec!["clusterdns".into()];
            if let Some(p) = &self.config {
                a.extend(["--config".into(), p.clone().into_os_string()]);
            }
            a
        } else {
            self.loaded.args.clone()
        };
        load(args)
    }
}

/// clap's one-line reason, without its `error: ` prefix and usage block.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    text.lines()
        .next()
        .unwrap_or("invalid value")
        .trim_start_matches("error: ")
        .to_owned()
}

/// A YAML scalar as the text a flag would get.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A YAML value as an error message shows it: its YAML text, trimmed.
fn show(v: &Value) -> String {
    serde_yaml_ng::to_string(v)
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

/// The file's keys as command-line arguments, each checked alone by its flag's parser:
/// `(arg id, arguments)` in file order.
fn file_args(
    path: &Path,
    text: &str,
    cmd: &clap::Command,
) -> Result<Vec<(String, Vec<OsString>)>, LoadError> {
    let file = path.display();
    let err = |m: String| LoadError::File(m);
    let doc: Value =
        serde_yaml_ng::from_str(text).map_err(|e| err(format!("{file}: not YAML: {e}")))?;
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        other => {
            return Err(err(format!(
                "{file}: expected a mapping of keys to values, found {}",
                show(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Value::String(key) = &k else {
            return Err(err(format!(
                "{file}: key {}: keys are flag names",
                show(&k)
            )));
        };
        let at = FileKey { path, key };
        let arg = at.arg(cmd)?;
        let values = at.args(arg, &v)?;
        // Each value alone through the flag's parser, so the error names it.
        for one in values.iter() {
            at.check_alone(cmd, arg, &v, one)?;
        }
        out.push((arg.get_id().to_string(), values));
    }
    Ok(out)
}

/// One key of a configuration file, what its errors name.
struct FileKey<'a> {
    path: &'a Path,
    key: &'a str,
}

impl FileKey<'_> {
    /// The flag the key sets: the argument of that long name, unless command-line only.
    fn arg<'c>(&self, cmd: &'c clap::Command) -> Result<&'c clap::Arg, LoadError> {
        let key = self.key;
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key) && !CLI_ONLY.contains(&key));
        arg.ok_or_else(|| {
            let hint = cmd
                .get_arguments()
                .filter_map(|a| a.get_long())
                .find(|l| *l == key.replace('_', "-") || *l == key.trim_end_matches('s'))
                .filter(|l| !CLI_ONLY.contains(l))
                .map(|l| format!(" (did you mean {l:?}?)"))
                .unwrap_or_default();
            LoadError::File(format!(
                "{}: unknown key {key:?}{hint}; keys are the flags' long names \
                 (`clusterdns --print-config` lists them)",
                self.path.display()
            ))
        })
    }

    /// The key's value as the arguments the flag would get: `--key=value` per value, the
    /// flag alone for `true`, nothing for `false` or null.
    fn args(&self, arg: &clap::Arg, v: &Value) -> Result<Vec<OsString>, LoadError> {
        let flag = format!("--{}", self.key);
        Ok(match (arg.get_action(), v) {
            (_, Value::Null) => Vec::new(),
            (ArgAction::SetTrue, Value::Bool(true)) => vec![flag.clone().into()],
            (ArgAction::SetTrue, Value::Bool(false)) => Vec::new(),
            (ArgAction::SetTrue, _) => return Err(self.bad(v, "expected true or false")),
            (ArgAction::Append, Value::Sequence(items)) => {
                let mut a = Vec::new();
                for item in items {
                    let s =
                        scalar(item).ok_or_else(|| self.bad(item, "expected a single value"))?;
                    a.push(format!("{flag}={s}").into());
                }
                a
            }
            (_, Value::Sequence(_)) => {
                return Err(self.bad(v, "expected one value, not a list"));
            }
            _ => {
                let s = scalar(v).ok_or_else(|| self.bad(v, "expected a single value"))?;
                vec![format!("{flag}={s}").into()]
            }
        })
    }

    /// Parses one of the key's arguments (`--key=value`) alone, so that an error names this
    /// value: clap's reason, or the possible values of a flag that has them.
    fn check_alone(
        &self,
        cmd: &clap::Command,
        arg: &clap::Arg,
        v: &Value,
        one: &OsString,
    ) -> Result<(), LoadError> {
        let Err(e) = cmd
            .clone()
            .try_get_matches_from([OsString::from("clusterdns"), one.clone()])
        else {
            return Ok(());
        };
        let shown = one
            .to_string_lossy()
            .split_once('=')
            .map_or(v.clone(), |(_, s)| Value::String(s.to_owned()));
        let reason = clap_reason(&e);
        let mut reason = reason
            .split_once("': ")
            .filter(|_| reason.starts_with("invalid value"))
            .map_or(reason.as_str(), |(_, why)| why)
            .to_owned();
        let possible = possible_values(arg);
        if !possible.is_empty() {
            reason = format!("expected one of {}", possible.join(", "));
        }
        Err(self.bad(&shown, &reason))
    }

    /// The error for a bad value of this key.
    fn bad(&self, value: &Value, why: &str) -> LoadError {
        LoadError::File(format!(
            "{}: key {:?}, value {}: {why}",
            self.path.display(),
            self.key,
            show(value)
        ))
    }
}

/// Every file key's value in effect, in flag order.
fn effective(cmd: &clap::Command, m: &clap::ArgMatches) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if CLI_ONLY.contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let raw: Vec<String> = m
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match arg.get_action() {
            ArgAction::SetTrue => Value::Bool(m.get_flag(id)),
            ArgAction::Append => Value::Sequence(raw.into_iter().map(Value::String).collect()),
            _ => match raw.into_iter().next() {
                None => Value::Null,
                Some(s) => match (s.parse::<u64>(), s.parse::<f64>()) {
                    (Ok(n), _) => Value::Number(n.into()),
                    (_, Ok(f)) if f.is_finite() && !s.contains(['e', 'E']) => {
                        Value::Number(f.into())
                    }
                    _ => Value::String(s),
                },
            },
        };
        out.push((long.to_owned(), value));
    }
    out
}
