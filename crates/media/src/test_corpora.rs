//! Test access to the shared corpora: `$SBC_CORPORA` when set (CI), else
//! `../../../shared/corpora` from this crate (the shared folder sits beside
//! the checkout).

use std::path::PathBuf;

pub(crate) fn dir() -> PathBuf {
    match std::env::var_os("SBC_CORPORA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"),
    }
}

/// A JSON file of `srtp/`, parsed.
pub(crate) fn srtp_json(name: &str) -> serde_json::Value {
    let path = dir().join("srtp").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set SBC_CORPORA)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes a hex string from the vectors.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// The hex string at a JSON path such as `["packet", "AEAD_AES_128_GCM", "srtp"]`.
pub(crate) fn hex_at(v: &serde_json::Value, path: &[&str]) -> Vec<u8> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    hex(cur
        .as_str()
        .unwrap_or_else(|| panic!("no string at {path:?}")))
}
