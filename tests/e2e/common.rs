//! Where the `sbc` binary and the shared corpora are.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `sbc` binary built for this test run.
pub(crate) fn sbc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sbc"))
}

/// Runs `sbc` with `args` and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    sbc().args(args).output().expect("cannot start sbc")
}

/// Runs `sbc ARGS` in `dir` as an operator would (no `RUST_LOG`), killed
/// after `limit`; returns (exit code, `None` when killed; stdout; stderr).
pub(crate) fn run_bounded(
    dir: &Path,
    args: &[&str],
    limit: Duration,
) -> (Option<i32>, String, String) {
    let mut child = sbc()
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start sbc");
    let mut stdout = child.stdout.take().expect("stdout piped");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for sbc") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        code,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
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
    log: Option<&Path>,
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let stderr = match log {
        Some(p) => Stdio::from(std::fs::File::create(p).expect("log file")),
        None => Stdio::null(),
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
        .stdout(Stdio::piped())
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
