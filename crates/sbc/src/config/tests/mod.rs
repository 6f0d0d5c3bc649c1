//! The configuration's tests: the shipped samples, and one negative test
//! per check, each asserting `FILE:LINE: FIELD: message`. `BASE` is a small
//! valid configuration the negative tests edit with [`refused`].

use std::path::PathBuf;

use super::*;
use crate::config::schema::default_agent;
use crate::config::tls::first_pem_certificate;

mod deploy;
mod general;
mod http;
mod interop;
mod log;
mod phones;
mod protect;
mod ringback;
mod routes;
mod samples;
mod tls;
mod trunks;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("sbc-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn trunk<'a>(l: &'a Loaded, name: &str) -> &'a trunk::TrunkSpec {
    l.trunks.iter().find(|t| t.name == name).unwrap()
}

// ----- negative tests: FILE:LINE: FIELD: message --------------------------

/// A small valid configuration: carrier, Teams and ACS, one route.
const BASE: &str = r#"[sbc]
fqdn = "sbc.example.test"

[[listen]]
transport = "udp"
addr = "127.0.0.1:5060"

[[listen]]
transport = "tls"
addr = "127.0.0.1:5061"
tls = "listener"

[tls.listener]
identities = [{ cert = "/nonexistent/teams.pem", key = "/nonexistent/teams.key" }]

[tls.teams]
identities = [{ cert = "/nonexistent/teams.pem", key = "/nonexistent/teams.key" }]

[tls.acs]
identities = [{ cert = "/nonexistent/acs.pem", key = "/nonexistent/acs.key" }]

[media]
interfaces = ["carrier/127.0.0.1", "microsoft/127.0.0.1"]

[[trunk]]
name = "carrier"
kind = "carrier"
peers = [{ host = "carrier.example.net", addr = "192.0.2.10:5060" }]
numbers = { inbound = [{ match = "^00(\\d+)$", replace = "+$1" }] }
media_interface = "carrier"

[[trunk]]
name = "teams"
kind = "teams"
fqdn = "teams.sbc.example.test"
tls = "teams"
media_interface = "microsoft"

[[trunk]]
name = "acs"
kind = "acs"
fqdn = "acs.sbc.example.test"
tls = "acs"

[[route]]
name = "carrier-to-teams"
from = ["carrier"]
called = "^\\+49"
to = ["teams", { trunk = "acs", label = "Fail-over" }]
"#;

fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

/// Replaces `from` by `to` in BASE, parses, and checks that the error
/// starts with `t.toml:LINE: FIELD: ` where LINE is that of `at` in the
/// edited text, and contains `what`.
fn refused(from: &str, to: &str, at: &str, field: &str, what: &str) {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    let text = BASE.replacen(from, to, 1);
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let want = if field.is_empty() {
        format!("t.toml:{}: ", line_of(&text, at))
    } else {
        format!("t.toml:{}: {field}: ", line_of(&text, at))
    };
    assert!(e.starts_with(&want), "want {want:?}, got {e:?}");
    assert!(e.contains(what), "want {what:?} in {e:?}");
}
