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
