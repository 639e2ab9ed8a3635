//! The configuration reference: every flag with its file key, default and meaning, as the
//! Markdown table `--print-config-reference` prints and README.md embeds.

use clap::{ArgAction, CommandFactory};

use super::flags::{CLI_ONLY, Config, possible_values};

/// The configuration reference as a Markdown table: flag, file key, default, meaning.
pub fn reference() -> String {
    let cmd = Config::command();
    let mut out = String::from("| Flag | Key | Default | Meaning |\n|---|---|---|---|\n");
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let key = if CLI_ONLY.contains(&long) {
            "—".to_owned()
        } else {
            format!("`{long}`")
        };
        let flag = match (arg.get_action(), arg.get_value_names()) {
            (ArgAction::SetTrue, _) => format!("`--{long}`"),
            (_, Some(names)) => format!("`--{long} {}`", names.join(" ")),
            _ => format!("`--{long} VALUE`"),
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let default = match arg.get_action() {
            ArgAction::SetTrue => "`false`".to_owned(),
            ArgAction::Append => "`[]`".to_owned(),
            _ if defaults.is_empty() => "—".to_owned(),
            _ => format!("`{}`", defaults.join(",")),
        };
        let mut meaning = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let possible: Vec<String> = possible_values(arg)
            .iter()
            .map(|p| format!("`{p}`"))
            .collect();
        if !possible.is_empty() {
            meaning.push_str(&format!(" One of {}.", possible.join(", ")));
        }
        out.push_str(&format!(
            "| {flag} | {key} | {default} | {} |\n",
            meaning.replace('|', "\\|")
        ));
    }
    out
}
