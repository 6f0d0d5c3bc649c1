//! `sbc check` on configurations with routing mistakes: each refused with
//! exit status 1 and `FILE:LINE: FIELD: message` on stderr, the line being
//! the one to fix.

use crate::common::sbc;
use crate::daemon::TempDir;

/// A valid configuration without TLS: a carrier and a gateway, one route
/// with an external-number destination and forward on failure.
const VALID: &str = r#"[sbc]
fqdn = "sbc.example.test"

[[listen]]
transport = "udp"
addr = "127.0.0.1:0"

[[trunk]]
name = "carrier"
kind = "carrier"
peers = [{ host = "carrier.example.net", addr = "192.0.2.10:5060" }]

[[trunk]]
name = "gateway"
kind = "gateway"
peers = [{ host = "gw.example.net", addr = "192.0.2.20:5060" }]

[[route]]
name = "carrier-to-gateway"
from = ["carrier"]
to = [
  "gateway",
  { trunk = "carrier", number = "+4915112345" },
]

[route.forward]
trunk = "carrier"
number = "+4915199999"
window_s = 10
ring_timeout_s = 30
"#;

/// Runs `sbc check` on `text` written to `DIR/NAME.toml`; returns (exit
/// code, stderr, the file's path as printed).
fn check(dir: &TempDir, name: &str, text: &str) -> (Option<i32>, String, String) {
    let p = dir.0.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    let out = sbc().args(["check", "--config"]).arg(&p).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        p.display().to_string(),
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?}"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn sbc_check_refuses_bad_forward_on_failure_naming_file_line_and_field() {
    let dir = TempDir::new("check-forward");
    let (code, err, _) = check(&dir, "valid", VALID);
    assert_eq!(code, Some(0), "{err}");
    // (what to replace, by what, the line to be named, field, message)
    let cases = [
        (
            "  \"gateway\",",
            "  \"gatewy\",",
            "\"gatewy\"",
            "route[0].to[0]",
            "no trunk named \"gatewy\" (trunks: carrier, gateway)",
        ),
        (
            "from = [\"carrier\"]",
            "from = [\"pstn\"]",
            "from = ",
            "route[0].from[0]",
            "no trunk named \"pstn\"",
        ),
        (
            "trunk = \"carrier\"\nnumber = \"+4915199999\"",
            "trunk = \"acs\"\nnumber = \"+4915199999\"",
            "trunk = \"acs\"",
            "route[0].forward.trunk",
            "no trunk named \"acs\" (trunks: carrier, gateway)",
        ),
        (
            "window_s = 10",
            "window_s = 0",
            "window_s = 0",
            "route[0].forward.window_s",
            "must be more than 0 and at most 3600 seconds (got 0)",
        ),
        (
            "window_s = 10",
            "window_s = -3",
            "window_s = -3",
            "route[0].forward.window_s",
            "must be more than 0 and at most 3600 seconds",
        ),
        (
            "window_s = 10",
            "window_s = 3601",
            "window_s = 3601",
            "route[0].forward.window_s",
            "must be more than 0 and at most 3600 seconds (got 3601)",
        ),
        (
            "ring_timeout_s = 30",
            "ring_timeout_s = 0",
            "ring_timeout_s = 0",
            "route[0].forward.ring_timeout_s",
            "must be more than 0 and at most 3600 seconds",
        ),
        (
            "number = \"+4915199999\"",
            "number = \"015199999\"",
            "number = \"015199999\"",
            "route[0].forward.number",
            "\"015199999\" is not an E.164 number (+ and 2 to 15 digits)",
        ),
        (
            "number = \"+4915112345\" }",
            "number = \"+49 151 12345\" }",
            "{ trunk = \"carrier\", number = \"+49 151",
            "route[0].to[1].number",
            "\"+49 151 12345\" is not an E.164 number",
        ),
    ];
    for (i, (from, to, at, field, what)) in cases.iter().enumerate() {
        assert!(VALID.contains(from), "case {i}: {from:?}");
        let text = VALID.replacen(from, to, 1);
        let (code, err, path) = check(&dir, &format!("bad{i}"), &text);
        assert_eq!(code, Some(1), "case {i}: {err}");
        let want = format!("sbc: {path}:{}: {field}: ", line_of(&text, at));
        assert!(
            err.starts_with(&want),
            "case {i}: want {want:?}, got {err:?}"
        );
        assert!(err.contains(what), "case {i}: want {what:?} in {err:?}");
    }
}
