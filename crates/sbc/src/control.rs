//! The control socket: a Unix stream socket on which `sbc reload` asks the
//! running daemon to read its configuration again and gets the daemon's
//! answer (what changed, or why the new file was refused) — so that
//! `systemctl reload sbc` fails when the new configuration does.
//!
//! One request per connection: a line (`reload`), answered with lines of
//! text, the first `ok …` or `error …`, then the connection closes. The
//! socket is made mode 0600 (owner: the service's user, and root).
//!
//! Where: `[sbc] control_socket`, else `$RUNTIME_DIRECTORY/control.sock`
//! (systemd's `RuntimeDirectory=sbc`: `/run/sbc/control.sock`), else
//! `/tmp/sbc-UID.sock`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// The longest request line read.
const MAX_LINE: u64 = 256;

/// How long a client may take to send its line, and `sbc reload` waits for
/// the answer (a reload reads certificates: seconds at most).
const TIMEOUT: Duration = Duration::from_secs(10);

/// A command for the SIP loop, with where its answer goes.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) command: Command,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// What a client can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Reload,
}

/// The loop's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) ok: bool,
    pub(crate) text: String,
}

/// The socket path: configured, else the service's runtime directory, else
/// one per user under /tmp.
pub(crate) fn path(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_owned();
    }
    if let Some(dir) = std::env::var_os("RUNTIME_DIRECTORY") {
        // systemd may pass several, separated by ':'; ours is the first.
        let first = dir.to_string_lossy().split(':').next().map(PathBuf::from);
        if let Some(d) = first.filter(|d| !d.as_os_str().is_empty()) {
            return d.join("control.sock");
        }
    }
    PathBuf::from(format!("/tmp/sbc-{}.sock", uid()))
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of our own /proc entry is our user id (no libc call needed).
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// Binds the socket and serves it on the current runtime; requests reach
/// `tx`. A socket file another daemon answers on is left alone (an error:
/// two daemons would otherwise share one control path); a stale one (its
/// daemon gone) is replaced.
pub(crate) async fn serve(path: &Path, tx: mpsc::Sender<Request>) -> Result<(), String> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(format!(
                "{}: another sbc answers on this control socket",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("{}: stale socket not removed: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let owned = path.to_owned();
    tokio::spawn(async move {
        let _remove = Remove(owned);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(client(stream, tx.clone()));
                }
                Err(e) => {
                    tracing::warn!(%e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

/// Removes the socket file when the serving task ends (the runtime stops).
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn client(stream: UnixStream, tx: mpsc::Sender<Request>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let got = tokio::time::timeout(
        TIMEOUT,
        BufReader::new(read.take(MAX_LINE)).read_line(&mut line),
    )
    .await;
    let reply = match got {
        Ok(Ok(_)) => match line.trim() {
            "reload" => ask(&tx, Command::Reload).await,
            other => Reply {
                ok: false,
                text: format!("unknown command {other:?} (known: reload)"),
            },
        },
        _ => return,
    };
    let head = if reply.ok { "ok" } else { "error" };
    let text = format!("{head} {}\n", reply.text);
    let _ = write.write_all(text.as_bytes()).await;
    let _ = write.shutdown().await;
}

async fn ask(tx: &mpsc::Sender<Request>, command: Command) -> Reply {
    let (reply, rx) = oneshot::channel();
    if tx.send(Request { command, reply }).await.is_err() {
        return Reply {
            ok: false,
            text: "the daemon is stopping".into(),
        };
    }
    rx.await.unwrap_or(Reply {
        ok: false,
        text: "the daemon is stopping".into(),
    })
}

/// `sbc reload`: asks the daemon on `path` and prints its answer. True when
/// the daemon says it reloaded.
pub(crate) fn reload(path: &Path) -> Result<bool, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "{}: {e} (is `sbc run` running? its control socket is [sbc] control_socket, \
             else $RUNTIME_DIRECTORY/control.sock, else /tmp/sbc-UID.sock)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(b"reload\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("{}: no answer: {e}", path.display()))?;
    print!("{answer}");
    Ok(answer.starts_with("ok"))
}
