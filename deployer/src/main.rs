use std::process::ExitCode;

use clap::Parser;
use stackctl::cli::Cli;
use stackctl::commands::{self, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let result = std::panic::catch_unwind(|| commands::run(cli));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(failure)) => {
            let code = failure.exit_code();
            let message = match failure {
                Failure::Invalid(d) if d.0.is_empty() => None,
                Failure::Invalid(d) => Some(d.to_string()),
                Failure::User(m) | Failure::Operation(m) => Some(m),
            };
            if let Some(message) = message {
                let label = if color { "\x1b[1;31merror\x1b[0m" } else { "error" };
                eprintln!("{label}: {message}");
            }
            ExitCode::from(code)
        }
        Err(_) => {
            eprintln!("error: internal error (a bug in stackctl): please report it with the command you ran");
            ExitCode::from(3)
        }
    }
}
