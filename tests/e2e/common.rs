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
