//! `[tls.NAME]` checks: profile names, certificate names, bad PEM.

use super::*;

#[test]
fn unknown_tls_profile_is_refused() {
    refused(
        "tls = \"acs\"",
        "tls = \"acs-client\"",
        "tls = \"acs-client\"",
        "trunk[2].tls",
        "no [tls.acs-client] profile",
    );
}

#[test]
fn fqdn_missing_from_certificate_is_refused() {
    let scratch = Scratch::new("wrong-cert");
    let ca = transport::devpki::DevCa::create(&scratch.0, "ca").unwrap();
    // The ACS profile holds the Teams certificate: a classic mix-up.
    ca.issue(&scratch.0, "teams", &["teams.sbc.example.test"])
        .unwrap();
    ca.issue(&scratch.0, "acs", &["teams.sbc.example.test"])
        .unwrap();
    // The listener serves both identities by SNI.
    let text = BASE
        .replacen(
            "[tls.listener]\nidentities = [{",
            "[tls.listener]\nidentities = [{ cert = \"/nonexistent/acs.pem\", key = \"/nonexistent/acs.key\" }, {",
            1,
        )
        .replace("/nonexistent/", &format!("{}/", scratch.0.display()));
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let want = format!(
        "t.toml:{}: trunk[2].fqdn: \"acs.sbc.example.test\" is not a name of the certificate ",
        line_of(&text, "fqdn = \"acs.sbc.example.test\"")
    );
    assert!(e.starts_with(&want), "{e}");
    assert!(e.contains("it has teams.sbc.example.test"), "{e}");
    // Right certificates: accepted, no warning, every profile loads.
    ca.issue(&scratch.0, "acs", &["acs.sbc.example.test"])
        .unwrap();
    let l = parse(&text, "t.toml").unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    l.tls_contexts().unwrap();
    // A wildcard certificate covers the FQDN too.
    ca.issue(&scratch.0, "acs", &["*.sbc.example.test"])
        .unwrap();
    parse(&text, "t.toml").unwrap();
}

#[test]
fn malformed_pem_is_refused_not_a_panic() {
    let bad_base64 = b"-----BEGIN CERTIFICATE-----\nMIIB*not base64*\n-----END CERTIFICATE-----\n";
    let e = first_pem_certificate(bad_base64).unwrap_err();
    assert!(e.starts_with("bad PEM: "), "{e}");
    let no_end = b"-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n";
    let e = first_pem_certificate(no_end).unwrap_err();
    assert!(e.starts_with("bad PEM: "), "{e}");
    assert_eq!(first_pem_certificate(b"not a PEM file at all\n"), Ok(None));
    assert_eq!(first_pem_certificate(&[0xff, 0xfe, 0x00]), Ok(None));
    // Through the loader: FILE:LINE: FIELD: path: bad PEM: ...
    let scratch = Scratch::new("bad-pem");
    let ca = transport::devpki::DevCa::create(&scratch.0, "ca").unwrap();
    ca.issue(&scratch.0, "acs", &["acs.sbc.example.test"])
        .unwrap();
    std::fs::write(scratch.0.join("teams.pem"), bad_base64).unwrap();
    let text = BASE.replace("/nonexistent/", &format!("{}/", scratch.0.display()));
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let want = format!(
        "t.toml:{}: tls.teams.identities[0].cert: {}: bad PEM: ",
        line_of(&text, "[tls.teams]") + 1,
        scratch.0.join("teams.pem").display()
    );
    assert!(e.starts_with(&want), "want {want:?}, got {e:?}");
    // A file with no certificate in it says so.
    std::fs::write(scratch.0.join("teams.pem"), "just text\n").unwrap();
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("teams.pem: no PEM certificate in file"), "{e}");
}

#[test]
fn listener_without_the_acs_certificate_is_refused() {
    let scratch = Scratch::new("listener-cert");
    let ca = transport::devpki::DevCa::create(&scratch.0, "ca").unwrap();
    ca.issue(&scratch.0, "teams", &["teams.sbc.example.test"])
        .unwrap();
    ca.issue(&scratch.0, "acs", &["acs.sbc.example.test"])
        .unwrap();
    // BASE's listener profile holds only the Teams certificate.
    let text = BASE.replace("/nonexistent/", &format!("{}/", scratch.0.display()));
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let want = format!(
        "t.toml:{}: trunk[2].fqdn: no certificate of [tls.listener] (listener 127.0.0.1:5061) is valid for acs.sbc.example.test",
        line_of(&text, "fqdn = \"acs.sbc.example.test\"")
    );
    assert!(e.starts_with(&want), "{e}");
    // ACS arriving only on another listener, Teams only on this one:
    // each listener serves the certificate of the trunks it takes.
    let text = text
        .replacen(
            "tls = \"listener\"\n",
            "tls = \"listener\"\n\n[[listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5062\"\ntls = \"acs\"\n",
            1,
        )
        .replacen(
            "tls = \"acs\"\n\n[[route]]",
            "tls = \"acs\"\nlisten = [\"127.0.0.1:5062\"]\n\n[[route]]",
            1,
        )
        .replacen(
            "tls = \"teams\"\nmedia_interface",
            "tls = \"teams\"\nlisten = [\"127.0.0.1:5061\"]\nmedia_interface",
            1,
        );
    parse(&text, "t.toml").unwrap();
}
