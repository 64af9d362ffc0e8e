//! `castellan`: run the server, administer its database, and drive its API.

mod access_cmds;
mod automation_cmds;
mod client;
mod commands;
mod config_cmds;
mod output;
mod secrets_cmds;
mod sso_cmds;
mod usage_cmds;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
