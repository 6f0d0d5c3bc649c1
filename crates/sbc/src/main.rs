//! `sbc` — the Session Border Controller program.
//!
//! * `sbc run [--config FILE]` — the daemon (embedded loopback default without `--config`);
//! * `sbc demo` — the daemon with simulated carrier, Teams and ACS peers: calls, a transfer, a failover;
//! * `sbc drill` — the failover drill: the daemon with simulated peers it kills, overloads and silences;
//! * `sbc reload [--config FILE | --socket PATH]` — the running daemon reads its
//!   configuration again and says what changed, or why it refused the file;
//! * `sbc check --config FILE [--preflight]` — validate a configuration and exit; with
//!   `--preflight`, also check what Microsoft will enforce (certificates, DNS, ports);
//! * `sbc dev-certs [--dir DIR]` — generate the development PKI used by the default;
//! * `sbc media --ng ADDR` — the media relay alone, driven over the rtpengine ng protocol;
//! * `sbc sip check FILE...` — the verdict the SBC gives each message file.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bindings;
mod config;
mod control;
mod daemon;
mod demo;
mod drill;
mod http;
mod media_cmd;
mod notify;
mod peers;
mod preflight;
mod reload;
mod shield;
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
    /// Run the SBC. Without --config: the embedded loopback default (sbc-config/demo.toml),
    /// generating development certificates into certs/dev/ when they are missing.
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Ask the running SBC to read its configuration file again (as SIGHUP does) and
    /// print its answer: what changed, or why the new file was refused (the running
    /// configuration then stays). Routes, trunks, number rules, users and certificates
    /// apply to new calls; calls in progress keep theirs. Exits 1 when refused.
    Reload {
        /// The daemon's configuration file: its `[sbc] control_socket` names the socket.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The control socket (default: $RUNTIME_DIRECTORY/control.sock, else /tmp/sbc-UID.sock).
        #[arg(long, conflicts_with = "config")]
        socket: Option<PathBuf>,
    },
    /// Run the SBC on the embedded default with simulated carrier, Teams and ACS peers in
    /// the same process: OPTIONS health, calls both ways with SRTP, a REFER transfer, a
    /// failover to ACS. Prints what happens; exits 0 when every call worked.
    Demo,
    /// The failover drill: the SBC on the embedded sbc-config/drill.toml with simulated
    /// carrier, Teams (sip, sip2, sip3), ACS, analog gateway and external number; injects
    /// one fault after the other (silent, dead, 503 Retry-After, whole trunks down, recovery)
    /// with a carrier call after each, and prints a table of where each call went, its setup
    /// time and PASS/FAIL against its target. Exits 0 only when every row passed.
    Drill {
        /// Multiplies every timing target (tests use a tiny one to prove that a missed
        /// target fails the drill).
        #[arg(long, hide = true, default_value_t = 1.0)]
        target_scale: f64,
    },
    /// Validate a configuration file (syntax, fields, certificates) and exit.
    Check {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Then check what Microsoft enforces before go-live (certificate chain, root,
        /// SAN, EKU, key, expiry; FQDNs, DNS, ports, clock): one line per finding,
        /// exit 1 on any error (warnings alone exit 0).
        #[arg(long)]
        preflight: bool,
        /// With --preflight: take the CA certificates of FILE as trusted by Microsoft
        /// (loopback tests and labs whose Microsoft is the development CA).
        #[arg(long, hide = true, value_name = "FILE", requires = "preflight")]
        trust_ca: Vec<PathBuf>,
    },
    /// Generate a development PKI (CA, SBC certificate, client certificate). Never for production.
    DevCerts {
        /// Output directory.
        #[arg(long, default_value = config::DEMO_CERT_DIR)]
        dir: PathBuf,
        /// DNS names of the SBC certificate.
        #[arg(long, default_values_t = ["sbc.example.test".to_owned(), "localhost".to_owned()])]
        sbc_name: Vec<String>,
    },
    /// Run the media relay alone, controlled over the rtpengine ng protocol (UDP).
    Media(media_cmd::Args),
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

/// Logs on stderr, filtered by `level` (`RUST_LOG` overrides), as text or
/// as one JSON object per line (`[log] format`).
fn init_logging(level: &str, format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        config::LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // The fields beside `message` at the top level; no span context
        // (the SBC logs from no spans).
        config::LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// The development PKI: a CA, the SBC's own certificate, a carrier client
/// certificate, the Teams and ACS identities of the embedded default (their
/// FQDNs differ, as Microsoft requires), and a certificate carrying the
/// Microsoft proxies' names for the simulated Microsoft peers of tests and
/// `sbc demo`.
fn dev_certs(dir: &std::path::Path, sbc_names: &[String]) -> Result<(), String> {
    let ca = transport::devpki::DevCa::create(dir, "ca").map_err(|e| e.to_string())?;
    let names: Vec<&str> = sbc_names.iter().map(String::as_str).collect();
    ca.issue(dir, "sbc", &names).map_err(|e| e.to_string())?;
    ca.issue(dir, "client", &["carrier.example.test"])
        .map_err(|e| e.to_string())?;
    ca.issue(dir, "teams", &["teams.sbc.example.test"])
        .map_err(|e| e.to_string())?;
    ca.issue(dir, "acs", &["acs.sbc.example.test"])
        .map_err(|e| e.to_string())?;
    ca.issue(dir, "microsoft", &trunk::MICROSOFT_PROXIES)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `sbc reload`: the socket from `--socket`, the configuration's
/// `[sbc] control_socket`, or the default.
fn reload(config: Option<PathBuf>, socket: Option<PathBuf>) -> Result<bool, String> {
    let configured = match (socket, config) {
        (Some(s), _) => Some(s),
        (None, Some(c)) => {
            let text = std::fs::read_to_string(&c).map_err(|e| format!("{}: {e}", c.display()))?;
            let t: toml::Table = text.parse().map_err(|e| format!("{}: {e}", c.display()))?;
            t.get("sbc")
                .and_then(|s| s.get("control_socket"))
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
        }
        (None, None) => None,
    };
    control::reload(&control::path(configured.as_deref()))
}

fn run(config: Option<PathBuf>) -> Result<(), String> {
    let loaded = match &config {
        Some(path) => config::load(path).map_err(|e| e.to_string())?,
        None => {
            let dir = std::path::Path::new(config::DEMO_CERT_DIR);
            let complete = ["sbc", "teams", "acs", "microsoft", "client"]
                .iter()
                .all(|n| dir.join(format!("{n}.pem")).exists());
            if !complete {
                eprintln!(
                    "sbc: generating development certificates into {}",
                    dir.display()
                );
                dev_certs(
                    dir,
                    &["sbc.example.test".to_owned(), "localhost".to_owned()],
                )?;
            }
            config::parse(config::DEMO, "<embedded sbc-config/demo.toml>")
                .map_err(|e| e.to_string())?
        }
    };
    init_logging(&loaded.log.level, loaded.log.format);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    daemon::run(loaded)
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
    let result = match cli.command {
        Command::Sip {
            command: SipCommand::Check(args),
        } => return sip_check::run(&args),
        Command::Run { config } => run(config),
        Command::Reload { config, socket } => {
            return match reload(config, socket) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("sbc reload: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo => demo::run(),
        Command::Drill { target_scale } => drill::run(target_scale),
        Command::Media(args) => {
            init_logging("info", config::LogFormat::Text);
            media_cmd::run(&args)
        }
        Command::Check {
            config,
            preflight,
            trust_ca,
        } => {
            let checked = config::load(&config)
                .and_then(|l| l.tls_contexts().map(|_| l))
                .inspect(|l| {
                    for w in &l.warnings {
                        eprintln!("warning: {w}");
                    }
                    println!("{}: ok", config.display());
                })
                .map_err(|e| e.to_string());
            match checked {
                Ok(l) if preflight => {
                    return match preflight::run(&l, &preflight::Options { trust_ca }) {
                        Ok(findings) if preflight::report(&findings) => ExitCode::SUCCESS,
                        Ok(_) => ExitCode::FAILURE,
                        Err(e) => {
                            eprintln!("sbc: {e}");
                            ExitCode::FAILURE
                        }
                    }
                }
                other => other.map(|_| ()),
            }
        }
        Command::DevCerts { dir, sbc_name } => dev_certs(&dir, &sbc_name).map(|()| {
            println!(
                "{}: ca, sbc, client, teams, acs, microsoft written",
                dir.display()
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sbc: {e}");
            ExitCode::FAILURE
        }
    }
}
