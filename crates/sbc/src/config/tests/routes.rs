//! `[[route]]` and `[route.forward]` checks.

use super::*;

#[test]
fn unknown_trunk_in_route_is_refused() {
    refused(
        "to = [\"teams\", { trunk = \"acs\"",
        "to = [\"teams\", { trunk = \"acz\"",
        "to = [\"teams\"",
        "route[0].to[1]",
        "no trunk named \"acz\" (trunks: carrier, teams, acs)",
    );
    refused(
        "from = [\"carrier\"]",
        "from = [\"carier\"]",
        "from = [\"carier\"]",
        "route[0].from[0]",
        "no trunk named \"carier\"",
    );
    refused(
        "to = [\"teams\", { trunk = \"acs\", label = \"Fail-over\" }]",
        "to = []",
        "to = []",
        "route[0].to",
        "at least one destination",
    );
}

#[test]
fn route_with_duplicate_name_is_refused() {
    let text = format!("{BASE}\n[[route]]\nname = \"carrier-to-teams\"\nto = [\"carrier\"]\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let want = format!(
        "t.toml:{}: route[1].name: duplicate route name",
        text.lines().count() - 1
    );
    assert!(e.starts_with(&want), "{e}");
}

/// BASE with a `[route.forward]` of these lines after its route.
fn with_forward(lines: &str) -> String {
    format!("{BASE}\n[route.forward]\n{lines}\n")
}

/// Parses `text`, expecting `t.toml:LINE: FIELD: ` with LINE that of `at`,
/// and `what` in the message.
fn refused_text(text: &str, at: &str, field: &str, what: &str) {
    let e = parse(text, "t.toml").unwrap_err().to_string();
    let want = format!("t.toml:{}: {field}: ", line_of(text, at));
    assert!(e.starts_with(&want), "want {want:?}, got {e:?}");
    assert!(e.contains(what), "want {what:?} in {e:?}");
}

#[test]
fn forward_on_failure_is_read() {
    let text = with_forward(
        "trunk = \"carrier\"\nnumber = \"+4915112345\"\nwindow_s = 10\nring_timeout_s = 2.5",
    );
    let l = parse(&text, "t.toml").unwrap();
    let f = l.routes.routes[0].forward.as_ref().unwrap();
    assert_eq!(f.to.trunk, "carrier");
    assert_eq!(
        f.to.target,
        routing::Target::Number("+4915112345".to_owned())
    );
    assert_eq!(f.to.label.as_deref(), Some("Fail-over"));
    assert_eq!(f.window, Duration::from_secs(10));
    assert_eq!(f.ring_timeout, Some(Duration::from_millis(2500)));
    // The limits themselves are fine.
    let text = with_forward("trunk = \"carrier\"\nnumber = \"+12\"\nwindow_s = 3600");
    parse(&text, "t.toml").unwrap();
}

#[test]
fn forward_to_an_unknown_trunk_is_refused() {
    let text = with_forward("trunk = \"carier\"\nnumber = \"+4915112345\"\nwindow_s = 10");
    refused_text(
        &text,
        "trunk = \"carier\"",
        "route[0].forward.trunk",
        "no trunk named \"carier\" (trunks: carrier, teams, acs)",
    );
}

#[test]
fn forward_window_out_of_range_is_refused() {
    for w in ["0", "0.0", "-1", "3600.5", "3601", "nan", "inf"] {
        let text = with_forward(&format!(
            "trunk = \"carrier\"\nnumber = \"+4915112345\"\nwindow_s = {w}"
        ));
        refused_text(
            &text,
            "window_s = ",
            "route[0].forward.window_s",
            "must be more than 0 and at most 3600 seconds",
        );
    }
    for r in ["0", "-2.5", "7200"] {
        let text = with_forward(&format!(
            "trunk = \"carrier\"\nnumber = \"+4915112345\"\nwindow_s = 10\nring_timeout_s = {r}"
        ));
        refused_text(
            &text,
            "ring_timeout_s = ",
            "route[0].forward.ring_timeout_s",
            "must be more than 0 and at most 3600 seconds",
        );
    }
    // Missing: the TOML schema says so, at the table.
    let text = with_forward("trunk = \"carrier\"\nnumber = \"+4915112345\"");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.starts_with("t.toml:"), "{e}");
    assert!(e.contains("missing field `window_s`"), "{e}");
}

#[test]
fn forward_number_that_is_not_e164_is_refused() {
    for n in [
        "4915112345",
        "004915112345",
        "+0151",
        "+4915112345x",
        "+49 151 12345",
        "+1",
        "+1234567890123456",
        "",
    ] {
        let text = with_forward(&format!(
            "trunk = \"carrier\"\nnumber = \"{n}\"\nwindow_s = 10"
        ));
        refused_text(
            &text,
            "number = ",
            "route[0].forward.number",
            &format!("{n:?} is not an E.164 number (+ and 2 to 15 digits)"),
        );
    }
}

#[test]
fn destination_with_a_bad_number_is_refused() {
    refused(
        "{ trunk = \"acs\", label = \"Fail-over\" }",
        "{ trunk = \"carrier\", number = \"0151 12345\" }",
        "to = [",
        "route[0].to[1].number",
        "\"0151 12345\" is not an E.164 number (+ and 2 to 15 digits)",
    );
    // On a line of its own in a multi-line list, that line is named.
    refused(
        "to = [\"teams\", { trunk = \"acs\", label = \"Fail-over\" }]",
        "to = [\n  \"teams\",\n  { trunk = \"carrier\", number = \"+49-151\" },\n]",
        "{ trunk = \"carrier\"",
        "route[0].to[1].number",
        "\"+49-151\" is not an E.164 number",
    );
    // A good one is an external-number destination.
    let text = BASE.replacen(
        "{ trunk = \"acs\", label = \"Fail-over\" }",
        "{ trunk = \"carrier\", number = \"+4915112345\" }",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(
        l.routes.routes[0].to[1].target,
        routing::Target::Number("+4915112345".to_owned())
    );
}
