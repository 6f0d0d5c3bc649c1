//! systemd's readiness protocol (sd_notify(3)) for `sbc run` under a
//! `Type=notify` unit: one datagram per state change to the socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`), and
//! `WATCHDOG=1` every half of `$WATCHDOG_USEC`, sent from the daemon's one
//! loop so that a wedged loop stops the pings and systemd restarts it.
//! Without `$NOTIFY_SOCKET` nothing is sent. Sending never blocks the loop: a
//! datagram the socket cannot take at once is dropped (logged at debug).

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where the notifications go, and how often the watchdog wants a ping.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `$WATCHDOG_USEC` (when it is meant for this process).
    watchdog: Option<Duration>,
    tick: Option<tokio::time::Interval>,
}

impl Notify {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`; sends
    /// nothing when `$NOTIFY_SOCKET` is unset or empty.
    pub(crate) fn from_env() -> Notify {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) else {
            return Notify::default();
        };
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
        match Notify::to(&target.to_string_lossy(), watchdog) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("sbc: NOTIFY_SOCKET {target:?}: {e}; not notifying systemd");
                Notify::default()
            }
        }
    }

    /// Notifies the socket `target` (`/path` or `@abstract`).
    pub(crate) fn to(target: &str, watchdog: Option<Duration>) -> std::io::Result<Notify> {
        let addr = socket_addr(target)?;
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notify {
            socket: Some((socket, addr)),
            watchdog,
            tick: None,
        })
    }

    /// Sends `state` (newline-separated `KEY=value` lines).
    pub(crate) fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket {
            if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
                tracing::debug!(%e, state, "systemd notification not sent");
            }
        }
    }

    /// Every listener is bound and the first DNS answers are in.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// Draining has started.
    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining");
    }

    /// A reload (SIGHUP) is under way; `ready` follows when it is done.
    pub(crate) fn reloading(&self) {
        self.send("RELOADING=1\nSTATUS=reloading");
    }

    /// Waits for the next watchdog ping and sends it; never returns when no
    /// watchdog is asked for (a `select!` branch that stays quiet).
    pub(crate) async fn watchdog(&mut self) {
        let Some(every) = self.watchdog.filter(|_| self.socket.is_some()) else {
            return std::future::pending().await;
        };
        let tick = self.tick.get_or_insert_with(|| {
            let mut i = tokio::time::interval(every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        tick.tick().await;
        self.send("WATCHDOG=1");
    }
}

/// The address `$NOTIFY_SOCKET` names: an absolute path, or `@name` for a
/// Linux abstract socket.
fn socket_addr(target: &str) -> std::io::Result<SocketAddr> {
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if target.starts_with('/') {
        SocketAddr::from_pathname(target)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "expected an absolute path or @abstract-name",
        ))
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set,
/// more than 0, and `WATCHDOG_PID` (if set) names this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok() != Some(me) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros((usec / 2).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_socket(tag: &str) -> (std::path::PathBuf, UnixDatagram) {
        let dir = std::env::temp_dir().join(format!("sbc-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (path, rx)
    }

    fn recv(rx: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).expect("a notification within 5 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn state_changes_arrive_at_a_path_socket() {
        let (path, rx) = temp_socket("path");
        let n = Notify::to(path.to_str().unwrap(), None).unwrap();
        n.ready("listening on 3 sockets");
        n.reloading();
        n.stopping();
        assert_eq!(recv(&rx), "READY=1\nSTATUS=listening on 3 sockets");
        assert_eq!(recv(&rx), "RELOADING=1\nSTATUS=reloading");
        assert_eq!(recv(&rx), "STOPPING=1\nSTATUS=draining");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_abstract_socket_is_written_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sbc-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notify::to(&format!("@{name}"), None).unwrap();
        n.ready("up");
        assert_eq!(recv(&rx), "READY=1\nSTATUS=up");
    }

    #[test]
    fn a_relative_or_other_socket_name_is_refused() {
        assert!(Notify::to("notify.sock", None).is_err());
        assert!(Notify::to("vsock:2:1234", None).is_err());
    }

    #[test]
    fn nothing_is_sent_without_a_socket() {
        // The default (no NOTIFY_SOCKET): every call is a no-op, and the
        // watchdog branch never completes.
        let mut n = Notify::default();
        n.ready("up");
        n.stopping();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let done = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), n.watchdog())
                .await
                .is_ok()
        });
        assert!(!done);
    }

    #[test]
    fn the_watchdog_pings_every_half_of_watchdog_usec() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("200000"), Some("7"), 7),
            Some(Duration::from_millis(100))
        );
        // Meant for another process (a child of ours would inherit it).
        assert_eq!(watchdog_interval(Some("200000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);

        let (path, rx) = temp_socket("watchdog");
        let mut n = Notify::to(path.to_str().unwrap(), Some(Duration::from_millis(100))).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let t0 = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..3 {
                n.watchdog().await;
            }
        });
        // The first ping at once, then one per interval.
        assert!(
            t0.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t0.elapsed()
        );
        for _ in 0..3 {
            assert_eq!(recv(&rx), "WATCHDOG=1");
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
