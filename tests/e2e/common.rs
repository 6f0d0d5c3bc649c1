//! Where the `sbc` binary and the shared corpora are.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `sbc` binary built for this test run.
pub(crate) fn sbc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sbc"))
}

/// Runs `sbc` with `args` and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    sbc().args(args).output().expect("cannot start sbc")
}

/// The shared test corpora (`../shared/corpora` beside the checkout), or
/// `$SBC_CORPORA` when set.
pub(crate) fn corpora() -> PathBuf {
    if let Some(p) = std::env::var_os("SBC_CORPORA") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

/// Starts `sbc media` with the ng socket on a free loopback port and the
/// given media port range; returns the child and the ng address.
pub(crate) fn start_media(
    port_min: u16,
    port_max: u16,
) -> (std::process::Child, std::net::SocketAddr) {
    start_media_logging(port_min, port_max, None)
}

/// As [`start_media`], with its log (stderr) written to `log`.
pub(crate) fn start_media_logging(
    port_min: u16,
    port_max: u16,
    log: Option<&std::path::Path>,
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let stderr = match log {
        Some(p) => std::process::Stdio::from(std::fs::File::create(p).expect("log file")),
        None => std::process::Stdio::null(),
    };
    let mut child = sbc()
        .args([
            "media",
            "--ng",
            "127.0.0.1:0",
            "--port-min",
            &port_min.to_string(),
            "--port-max",
            &port_max.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("cannot start sbc media");
    let out = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("sbc media prints its ng address");
    let addr = line
        .trim()
        .strip_prefix("listening ng ")
        .expect("listening line")
        .parse()
        .expect("address");
    (child, addr)
}
