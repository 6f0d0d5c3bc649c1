//! Helpers for the end-to-end tests in `e2e/`: where the `sbc` binary and
//! the shared corpora are.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The shared test corpora (`../shared/corpora` beside the checkout), or
/// `$SBC_CORPORA` when set.
pub fn corpora() -> PathBuf {
    if let Some(p) = std::env::var_os("SBC_CORPORA") {
        return PathBuf::from(p);
    }
    workspace_root().join("../shared/corpora")
}
