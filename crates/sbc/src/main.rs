//! `sbc` — the Session Border Controller program.
//!
//! Subcommands so far: `sbc sip check` (the verdict tool). The daemon
//! (`sbc run`), `sbc check`, `sbc demo` and `sbc media` come with the
//! transaction, transport, media and B2BUA layers.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sip_check;

#[derive(Debug, Parser)]
#[command(
    name = "sbc",
    version,
    about = "Session Border Controller: carrier SIP trunks to Teams and ACS Direct Routing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// SIP message tools.
    Sip {
        #[command(subcommand)]
        command: SipCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SipCommand {
    /// Print the verdict (accept / reply / drop) the SBC gives each message file.
    Check(sip_check::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Sip {
            command: SipCommand::Check(args),
        } => sip_check::run(&args),
    }
}
