//! The `presence-hub` binary: parse and validate the configuration (exit 2
//! on a bad value, naming the variable), set up logging, run the hub.

use std::process::ExitCode;

use clap::Parser;
use presence_hub::{Config, telemetry};

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(err) => return report_parse_error(&err),
    };
    let settings = match config.validate() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("presence-hub: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("presence-hub: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(presence_hub::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "presence hub failed to start");
            eprintln!("presence-hub: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Prints `--help`/`--version` as asked (exit 0), or a parse error that
/// names the environment variable as well as the flag (exit 2).
fn report_parse_error(err: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let variable = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => env_name_of(arg),
        _ => None,
    };
    match variable {
        Some(variable) => eprintln!("presence-hub: invalid configuration: {variable}: {err}"),
        None => eprintln!("presence-hub: invalid configuration: {err}"),
    }
    ExitCode::from(2)
}

/// `--idle-after <IDLE_AFTER>` -> `PRESENCE_IDLE_AFTER`.
fn env_name_of(arg: &str) -> Option<String> {
    let flag = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    Some(format!(
        "PRESENCE_{}",
        flag.replace('-', "_").to_ascii_uppercase()
    ))
}
