//! The `presence-hub` binary: parse and validate the configuration (exit 2
//! on a bad value, naming the variable), set up logging, run the hub.

use std::process::ExitCode;

use clap::Parser;
use presence_hub::{Config, telemetry};

fn main() -> ExitCode {
    let config = Config::parse();
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
            ExitCode::FAILURE
        }
    }
}
