//! The Debian package and the service: the .deb that cargo-deb makes from
//! `[package.metadata.deb]` (inspected with dpkg-deb, unpacked into a
//! throw-away root, its binary and conffile checked, its unit verified by
//! systemd-analyze), and `sbc run` speaking systemd's notification protocol
//! to a socket the test binds, as under the unit's `Type=notify`.
//!
//! The package is made from the binary these tests run (the suite builds no
//! release binary; building one here would take minutes of the suite's two
//! cores), linked into a scratch target directory as cargo-deb's
//! `target/release/sbc`. `cargo deb -p sbc` makes the real one
//! (docs/deploy.md).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::sbc;
use crate::daemon::{default_config, dev_certs, TempDir};

/// The workspace root (where `cargo deb -p sbc` runs).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cmd` to the end, killed and failed after `limit`; a missing
/// program fails loudly, naming what installs it.
fn output_within(cmd: &mut Command, limit: Duration, installed_by: &str) -> Output {
    let name = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name} ({installed_by}): {e}"));
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Builds the .deb into `dir` from the binary under test; returns its path.
fn build_deb(dir: &Path) -> PathBuf {
    let release = dir.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    let bin = release.join("sbc");
    // A hard link when the temp dir shares the file system (no copy of a
    // 180 MB debug binary), a copy otherwise.
    if std::fs::hard_link(env!("CARGO_BIN_EXE_sbc"), &bin).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_sbc"), &bin).unwrap();
    }
    let deb = dir.join("sbc.deb");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = output_within(
        Command::new(cargo)
            .args(["deb", "-p", "sbc", "--no-build", "--strip", "--no-dbgsym"])
            .arg("--output")
            .arg(&deb)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .current_dir(workspace()),
        Duration::from_secs(600),
        "cargo-deb: scripts/test runs cargo install cargo-deb",
    );
    assert!(
        out.status.success(),
        "cargo deb failed (scripts/test installs cargo-deb):\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(deb.is_file(), "cargo deb wrote no {}", deb.display());
    deb
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = output_within(
        Command::new("dpkg-deb").args(args).arg(deb),
        Duration::from_secs(120),
        "dpkg-deb: Debian's dpkg",
    );
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `Key=Value` lines of a unit file (comments and sections left out; a key
/// given twice keeps its last value, as systemd does for these keys).
fn unit_settings(unit: &str) -> BTreeMap<String, String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Seconds of a systemd time span such as `90s`, `2min` or `30`.
fn seconds(span: &str) -> u64 {
    let digits: String = span.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().expect("a number of seconds");
    match &span[digits.len()..] {
        "" | "s" => n,
        "min" => n * 60,
        other => panic!("unexpected time unit {other:?} in {span:?}"),
    }
}

#[test]
fn the_deb_ships_the_binary_conffiles_samples_unit_and_user_scripts() {
    let dir = TempDir::new("deb");
    let deb = build_deb(&dir.0);
    let ws = workspace();

    // Control fields.
    let fields = dpkg_deb(&["-f"], &deb);
    assert!(fields.contains("Package: sbc\n"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {}-1\n", env!("CARGO_PKG_VERSION"))),
        "{fields}"
    );
    let depends = fields
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{fields}"));
    assert!(depends.contains("adduser"), "{depends}");
    assert!(depends.contains("libc6"), "{depends}");

    // The files, with their modes.
    let listing = dpkg_deb(&["-c"], &deb);
    let files: BTreeMap<String, String> = listing
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let mode = f.next()?.to_owned();
            let path = f.last()?.trim_start_matches('.').to_owned();
            Some((path, mode))
        })
        .collect();
    let expect = [
        ("/usr/bin/sbc", "-rwxr-xr-x"),
        ("/etc/sbc/sbc.toml", "-rw-r--r--"),
        // The phones' passwords: not world-readable (postinst gives the group to sbc).
        ("/etc/sbc/users.toml", "-rw-r-----"),
        ("/usr/lib/systemd/system/sbc.service", "-rw-r--r--"),
        ("/usr/share/doc/sbc/copyright", "-rw-r--r--"),
        ("/usr/share/doc/sbc/changelog.Debian.gz", "-rw-r--r--"),
        ("/usr/share/doc/sbc/deploy.md", "-rw-r--r--"),
    ];
    for (path, mode) in expect {
        assert_eq!(
            files.get(path).map(String::as_str),
            Some(mode),
            "{path} in the package:\n{listing}"
        );
    }
    for sample in std::fs::read_dir(ws.join("sbc-config")).unwrap() {
        let name = sample.unwrap().file_name();
        let path = format!("/usr/share/doc/sbc/examples/{}", name.to_string_lossy());
        assert!(files.contains_key(&path), "{path} missing:\n{listing}");
    }
    // The cloud-init examples of the Azure pair (docs/deploy.md).
    for example in std::fs::read_dir(ws.join("packaging/azure")).unwrap() {
        let name = example.unwrap().file_name();
        let path = format!(
            "/usr/share/doc/sbc/examples/azure/{}",
            name.to_string_lossy()
        );
        assert_eq!(
            files.get(&path).map(String::as_str),
            Some("-rw-r--r--"),
            "{path} in the package:\n{listing}"
        );
    }
    // Nothing lands in /var: the state directory is made by postinst (and StateDirectory=).
    assert!(!files.keys().any(|p| p.starts_with("/var")), "{listing}");

    // Control files: the two conffiles, the maintainer scripts.
    let control = dir.0.join("control");
    let out = output_within(
        Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control),
        Duration::from_secs(60),
        "dpkg-deb: Debian's dpkg",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    let conffiles: Vec<&str> = conffiles.lines().collect();
    assert_eq!(conffiles, ["/etc/sbc/sbc.toml", "/etc/sbc/users.toml"]);
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(
        postinst
            .contains("adduser --system --group --quiet --home /var/lib/sbc --no-create-home sbc"),
        "{postinst}"
    );
    assert!(
        postinst.contains("install -d -o sbc -g sbc -m 0750 /var/lib/sbc"),
        "{postinst}"
    );
    assert!(
        postinst.contains("chown root:sbc /etc/sbc/users.toml"),
        "{postinst}"
    );
    // cargo-deb's systemd part: neither enabled nor started on install
    // (example addresses), restarted on upgrade only when running.
    assert!(
        postinst.contains("deb-systemd-helper update-state sbc.service"),
        "{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-invoke try-restart sbc.service"),
        "{postinst}"
    );
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    let prerm = std::fs::read_to_string(control.join("prerm")).unwrap();
    assert!(
        prerm.contains("deb-systemd-invoke stop sbc.service"),
        "{prerm}"
    );
    let postrm = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(postrm.contains("rm -rf /var/lib/sbc"), "{postrm}");
    for script in ["postinst", "prerm", "postrm"] {
        let out = output_within(
            Command::new("sh").arg("-n").arg(control.join(script)),
            Duration::from_secs(10),
            "sh",
        );
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    }

    // Unpacked: the files are the repository's, the binary runs.
    let root = dir.0.join("root");
    let out = output_within(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        Duration::from_secs(120),
        "dpkg-deb: Debian's dpkg",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let same = |packaged: &str, source: &str| {
        assert_eq!(
            std::fs::read(root.join(packaged)).unwrap(),
            std::fs::read(ws.join(source)).unwrap(),
            "{packaged} is not {source}"
        );
    };
    same("etc/sbc/sbc.toml", "sbc-config/onprem.toml");
    same("etc/sbc/users.toml", "sbc-config/users.toml");
    same(
        "usr/lib/systemd/system/sbc.service",
        "packaging/sbc.service",
    );
    let bin = root.join("usr/bin/sbc");
    let out = output_within(
        Command::new(&bin).arg("--version"),
        Duration::from_secs(20),
        "the unpacked package",
    );
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("sbc {}", env!("CARGO_PKG_VERSION"))
    );

    // The conffile as installed, before the certificates are in place:
    // `sbc check` names the one missing file the operator must add.
    let etc = root.join("etc/sbc");
    let check = |config: &Path| {
        output_within(
            Command::new(&bin).arg("check").arg("--config").arg(config),
            Duration::from_secs(30),
            "the unpacked package",
        )
    };
    let out = check(&etc.join("sbc.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/etc/sbc/tls/teams.pem: no such file"),
        "{}",
        text(&out.stderr)
    );
    // With a certificate for its FQDN in /etc/sbc/tls (here ROOT/etc/sbc/tls,
    // the paths of a copy pointing there), the conffile passes.
    let pki = dir.0.join("pki");
    let out = output_within(
        sbc()
            .args(["dev-certs", "--sbc-name", "sbc.contoso.com", "--dir"])
            .arg(&pki),
        Duration::from_secs(60),
        "sbc",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tls = etc.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    for (from, to) in [
        ("sbc.pem", "teams.pem"),
        ("sbc.key", "teams.key"),
        ("ca.pem", "microsoft-roots.pem"),
    ] {
        std::fs::copy(pki.join(from), tls.join(to)).unwrap();
    }
    let rooted = |file: &Path| {
        let s = std::fs::read_to_string(file).unwrap();
        let s = s.replace("\"/etc/sbc/", &format!("\"{}/", etc.display()));
        let copy = dir.0.join(file.file_name().unwrap());
        std::fs::write(&copy, s).unwrap();
        copy
    };
    let out = check(&rooted(&etc.join("sbc.toml")));
    assert!(
        out.status.success(),
        "the shipped sbc.toml with its certificates: {}",
        text(&out.stderr)
    );
    // The phones sample reads the packaged users file.
    let out = check(&rooted(
        &root.join("usr/share/doc/sbc/examples/phones.toml"),
    ));
    assert!(
        out.status.success(),
        "phones.toml with /etc/sbc/users.toml: {}",
        text(&out.stderr)
    );

    // The unit.
    let unit_path = root.join("usr/lib/systemd/system/sbc.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let u = unit_settings(&unit);
    let want = [
        ("Type", "notify"),
        ("ExecStart", "/usr/bin/sbc run --config /etc/sbc/sbc.toml"),
        ("ExecReload", "/usr/bin/sbc reload"),
        ("RuntimeDirectory", "sbc"),
        ("User", "sbc"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        ),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("StateDirectory", "sbc"),
        ("ConfigurationDirectory", "sbc"),
        ("WatchdogSec", "30s"),
        ("Restart", "on-failure"),
        ("WantedBy", "multi-user.target"),
    ];
    for (k, v) in want {
        assert_eq!(u.get(k).map(String::as_str), Some(v), "{k}= in the unit");
    }
    // SIGTERM drains for at most drain.max_wait_s: systemd must wait longer.
    let shipped: toml::Value =
        toml::from_str(&std::fs::read_to_string(etc.join("sbc.toml")).unwrap()).unwrap();
    let max_wait = shipped["drain"]["max_wait_s"].as_integer().unwrap() as u64;
    let stop = seconds(&u["TimeoutStopSec"]);
    assert!(
        stop >= max_wait + 30,
        "TimeoutStopSec={stop}s, drain {max_wait}s"
    );
    // Descriptors for every media port of the shipped range on each of its
    // media addresses (the epoll worst case: one socket per port).
    let media = &shipped["media"];
    let ports = (media["port_max"].as_integer().unwrap() - media["port_min"].as_integer().unwrap()
        + 1) as u64;
    let addrs = media["interfaces"].as_array().unwrap().len() as u64;
    let nofile: u64 = u["LimitNOFILE"].parse().unwrap();
    assert!(nofile >= ports * addrs + 1024, "LimitNOFILE={nofile}");

    // systemd-analyze verify: silent on the unit with the unpacked root's
    // binary and config substituted (verify checks ExecStart's binary).
    let verify = |unit_text: &str, name: &str| {
        let copy = dir.0.join(name);
        std::fs::write(&copy, unit_text).unwrap();
        output_within(
            Command::new("systemd-analyze").arg("verify").arg(&copy),
            Duration::from_secs(60),
            "systemd-analyze: Debian's systemd, scripts/test installs it",
        )
    };
    let local = unit
        .replace("/usr/bin/sbc", &bin.display().to_string())
        .replace(
            "/etc/sbc/sbc.toml",
            &etc.join("sbc.toml").display().to_string(),
        );
    let out = verify(&local, "sbc.service");
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // … and it would speak up about a mistake.
    let out = verify(
        &local.replace("Type=notify", "Type=notifyy"),
        "broken.service",
    );
    assert!(
        text(&out.stderr).contains("notifyy"),
        "verify did not notice a bad Type=: {}",
        text(&out.stderr)
    );
    // systemd's own exposure score of the hardening (0 best, 10 worst).
    let out = output_within(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(dir.0.join("sbc.service")),
        Duration::from_secs(60),
        "systemd-analyze: Debian's systemd, scripts/test installs it",
    );
    let report = text(&out.stdout) + &text(&out.stderr);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for sbc.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level:\n{report}"));
    assert!(score <= 3.5, "exposure {score}:\n{report}");
}

/// What the test sees of a running `sbc run`: its stdout lines and the
/// datagrams on the notification socket, in the order they reached it.
#[derive(Debug)]
enum Seen {
    Line(String),
    Notify(String),
}

/// `sbc run --config CONFIG` with `NOTIFY_SOCKET` bound by the test (and
/// `env`), started through `launcher` (a command line before the binary).
struct Notified {
    child: Child,
    rx: mpsc::Receiver<(Instant, Seen)>,
    stderr: Arc<Mutex<String>>,
    /// Ends the socket reader.
    done: Arc<AtomicBool>,
}

impl Notified {
    fn start(dir: &Path, config: &str, launcher: &[&str], env: &[(&str, String)]) -> Notified {
        let cfg = dir.join("sbc.toml");
        std::fs::write(&cfg, config).unwrap();
        let socket_path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut cmd = match launcher.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(env!("CARGO_BIN_EXE_sbc"));
                c
            }
            None => sbc(),
        };
        cmd.args(["run", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start sbc run");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let lines = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines.send((Instant::now(), Seen::Line(line)));
            }
        });
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Woken every 200 ms (the read timeout) to see whether the test is over.
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let m = text(&buf[..n]);
                    if tx.send((Instant::now(), Seen::Notify(m))).is_err() {
                        return;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Notified {
            child,
            rx,
            stderr,
            done,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything seen until `stop` says so (or `limit` runs out: a failure).
    fn until(&self, limit: Duration, mut stop: impl FnMut(&Seen) -> bool) -> Vec<(Instant, Seen)> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, s)) => {
                    let done = stop(&s);
                    seen.push((at, s));
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "not seen within {limit:?}; seen {seen:?}\nstderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits (bounded) for the exit code.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "sbc run did not exit within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_notify(s: &Seen, prefix: &str) -> bool {
    matches!(s, Seen::Notify(m) if m.starts_with(prefix))
}

#[test]
fn sbc_run_notifies_systemd_ready_after_listening_reloading_on_sighup_stopping_on_sigterm() {
    let dir = TempDir::new("notify");
    let certs = dir.0.join("certs");
    dev_certs(&certs);
    // A peer found by DNS, from a server that never answers: READY waits for
    // the first lookups (3 s at most) so that the first calls find their peers.
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    dns.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let dns_addr = dns.local_addr().unwrap();
    let (qtx, qrx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        if dns.recv(&mut buf).is_ok() {
            let _ = qtx.send(Instant::now());
        }
    });
    let config = format!(
        "{}\n[dns]\nservers = [\"{dns_addr}\"]\n\n[[trunk]]\nname = \"gw-by-name\"\nkind = \"gateway\"\npeers = [{{ host = \"gw.silent.test\", port = 5999 }}]\n",
        default_config(&certs, "")
    );
    let mut d = Notified::start(
        &dir.0,
        &config,
        &[],
        &[("WATCHDOG_USEC", "200000".to_owned())],
    );
    let start = d.until(Duration::from_secs(20), |s| is_notify(s, "READY=1"));
    let (ready_at, ready) = start.last().unwrap();
    assert!(
        matches!(ready, Seen::Notify(m) if m == "READY=1\nSTATUS=3 listeners"),
        "{ready:?}"
    );
    // Every listener and the media range were printed before READY=1.
    let lines: Vec<&str> = start
        .iter()
        .filter_map(|(_, s)| match s {
            Seen::Line(l) => Some(l.as_str()),
            Seen::Notify(_) => None,
        })
        .collect();
    for t in ["udp", "tcp", "tls"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("listening {t} 127.0.0.1:"))),
            "READY=1 before the {t} listener: {start:?}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("media ")), "{start:?}");
    assert!(
        !start
            .iter()
            .any(|(_, s)| matches!(s, Seen::Notify(_)) && !is_notify(s, "READY=1")),
        "a notification before READY=1: {start:?}"
    );
    let asked = qrx
        .recv_timeout(Duration::from_secs(1))
        .expect("the daemon asked the DNS server before READY=1");
    assert!(
        asked < *ready_at,
        "READY=1 before the first DNS lookup was even sent"
    );
    let waited = ready_at.duration_since(asked);
    assert!(
        waited >= Duration::from_secs(1) && waited <= Duration::from_secs(4),
        "READY=1 {waited:?} after the unanswered DNS query (bounded wait of 3 s)"
    );

    // WATCHDOG_USEC=200000: a ping every 100 ms from the main loop.
    let t0 = Instant::now();
    let mut pings = 0;
    d.until(Duration::from_secs(5), |s| {
        if is_notify(s, "WATCHDOG=1") {
            pings += 1;
        }
        t0.elapsed() >= Duration::from_secs(1)
    });
    assert!((8..=14).contains(&pings), "{pings} watchdog pings in 1 s");

    // SIGHUP: RELOADING=1, then READY=1 once reloaded.
    d.signal("HUP");
    let reload = d.until(Duration::from_secs(10), |s| is_notify(s, "READY=1"));
    let states: Vec<&str> = reload
        .iter()
        .filter_map(|(_, s)| match s {
            Seen::Notify(m) if !m.starts_with("WATCHDOG") => Some(m.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        ["RELOADING=1\nSTATUS=reloading", "READY=1\nSTATUS=reloaded"]
    );

    // SIGTERM: STOPPING=1 as draining starts; exit 0.
    d.signal("TERM");
    d.until(
        Duration::from_secs(10),
        |s| matches!(s, Seen::Notify(m) if m == "STOPPING=1\nSTATUS=draining"),
    );
    assert_eq!(d.wait(Duration::from_secs(30)), Some(0), "{}", d.stderr());
}

#[test]
fn sbc_run_keeps_its_io_uring_relay_under_memory_deny_write_execute() {
    // The unit's MemoryDenyWriteExecute=yes and NoNewPrivileges=yes, applied
    // by the kernel's own switches (PR_SET_MDWE, Linux 6.3+, which systemd
    // uses where it can; PR_SET_NO_NEW_PRIVS) before exec'ing sbc run.
    let launcher = [
        "python3",
        "-c",
        "import ctypes, os, sys\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         if libc.prctl(38, 1, 0, 0, 0) != 0: sys.exit('PR_SET_NO_NEW_PRIVS: errno %d' % ctypes.get_errno())\n\
         if libc.prctl(65, 1, 0, 0, 0) != 0: sys.exit('PR_SET_MDWE (Linux 6.3+): errno %d' % ctypes.get_errno())\n\
         os.execv(sys.argv[1], sys.argv[1:])",
    ];
    let dir = TempDir::new("mdwe");
    let certs = dir.0.join("certs");
    dev_certs(&certs);
    let config =
        default_config(&certs, "").replace("[media]\n", "[media]\nio = \"uring\"\nworkers = 2\n");
    let mut d = Notified::start(&dir.0, &config, &launcher, &[]);
    d.until(Duration::from_secs(20), |s| is_notify(s, "READY=1"));
    let pid = d.child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"])),
        "{status}"
    );
    // Each relay worker holds its ring (the kernel's io_uring file), made
    // by the worker's thread as it starts.
    let rings = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().contains("io_uring"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while rings() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rings() >= 2, "{} io_uring rings\n{}", rings(), d.stderr());
    assert!(
        !d.stderr().contains("io_uring unavailable"),
        "{}",
        d.stderr()
    );
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(30)), Some(0), "{}", d.stderr());
}
