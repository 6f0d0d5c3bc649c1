//! The daemon of `sbc run` inside a program that also plays its neighbours
//! (`sbc demo`, `sbc drill`): its hooks, and one way to run it beside the
//! steps that drive the simulated peers.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::{Reports, Result, WAIT};
use crate::daemon::Hooks;

/// The embedding program's ends of the daemon's hooks.
pub(crate) struct Control {
    stop: oneshot::Sender<()>,
    ready: oneshot::Receiver<Vec<(transport::Transport, std::net::SocketAddr)>>,
}

/// How the daemon ended once the steps were over.
pub(crate) enum Stopped {
    /// It stopped by itself while the steps ran (the steps' result says why).
    ByItself,
    /// Drained and stopped when told.
    Drained,
    /// It failed while stopping.
    Failed(String),
    /// It did not finish draining within [`WAIT`] (a call left up).
    NotDrained,
}

/// Hooks for `daemon::serve`, the reports of what it outputs, and the
/// control to run it with.
pub(crate) fn embed() -> (Hooks, Reports, Control) {
    let (stop_tx, stop_rx) = oneshot::channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let hooks = Hooks {
        stop: Some(stop_rx),
        outputs: Some(out_tx),
        ready: Some(ready_tx),
        ..Hooks::default()
    };
    let control = Control {
        stop: stop_tx,
        ready: ready_rx,
    };
    (hooks, Reports::new(out_rx), control)
}

impl Control {
    /// Runs `daemon` (the future of `daemon::serve` with [`embed`]'s hooks)
    /// until it listens, then `steps`; then drains and stops it as SIGTERM
    /// would. The steps' result is an error when the daemon never listened
    /// or stopped by itself.
    pub(crate) async fn run(
        self,
        daemon: impl Future<Output = std::result::Result<(), String>>,
        steps: impl Future<Output = Result<()>>,
    ) -> (Result<()>, Stopped) {
        tokio::pin!(daemon);
        let ready = self.ready;
        let steps = async {
            timeout(WAIT, ready)
                .await
                .map_err(|_| "the SBC did not start listening".to_owned())?
                .map_err(|_| "the SBC stopped before listening".to_owned())?;
            steps.await
        };
        let result = tokio::select! {
            r = &mut daemon => {
                let why = r.err().unwrap_or_default();
                return (Err(format!("the SBC stopped by itself: {why}")), Stopped::ByItself);
            }
            r = steps => r,
        };
        let _ = self.stop.send(());
        let stopped = match timeout(WAIT, &mut daemon).await {
            Ok(Ok(())) => Stopped::Drained,
            Ok(Err(e)) => Stopped::Failed(e),
            Err(_) => Stopped::NotDrained,
        };
        (result, stopped)
    }
}
