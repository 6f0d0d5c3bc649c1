//! `[emergency]`, `[protect]`, a trunk's `max_cps` and `emergency`,
//! `[media] emergency_reserve_percent`.

use super::*;

#[test]
fn emergency_numbers_default_merge_with_the_trunks_and_are_checked() {
    let l = parse(BASE, "t.toml").unwrap();
    assert_eq!(trunk(&l, "carrier").emergency, ["911", "112", "999"]);
    assert_eq!(trunk(&l, "carrier").max_cps, None);
    assert_eq!(l.protect.unknown_source, b2bua::UnknownSource::Drop);
    assert_eq!(l.media.emergency_reserve_percent, 5);
    let text = BASE.replacen(
        "[media]\n",
        "[emergency]\nnumbers = [\"112\", \"+4930110\"]\n\n[protect]\nunknown_source = \"reject\"\n\n[media]\nemergency_reserve_percent = 10\n",
        1,
    )
    .replacen(
        "media_interface = \"carrier\"\n",
        "media_interface = \"carrier\"\nemergency = [\"110\", \"112\"]\nmax_cps = 20\n",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(trunk(&l, "carrier").emergency, ["112", "+4930110", "110"]);
    assert_eq!(trunk(&l, "teams").emergency, ["112", "+4930110"]);
    assert_eq!(trunk(&l, "carrier").max_cps, Some(20));
    assert_eq!(l.protect.unknown_source, b2bua::UnknownSource::Reject);
    assert_eq!(l.media.emergency_reserve_percent, 10);
    let none = BASE.replacen("[media]\n", "[emergency]\nnumbers = []\n\n[media]\n", 1);
    assert!(trunk(&parse(&none, "t.toml").unwrap(), "acs")
        .emergency
        .is_empty());
}

#[test]
fn protection_keys_are_refused_with_file_line_and_field() {
    refused(
        "[media]\n",
        "[emergency]\nnumbers = [\"911\", \"urn:service:sos\"]\n\n[media]\n",
        "numbers = ",
        "emergency.numbers[1]",
        "is not a number",
    );
    refused(
        "media_interface = \"carrier\"\n",
        "media_interface = \"carrier\"\nemergency = [\"1 1 2\"]\n",
        "emergency = ",
        "trunk[0].emergency[0]",
        "is not a number",
    );
    refused(
        "kind = \"teams\"\n",
        "kind = \"teams\"\nmax_cps = 0\n",
        "max_cps",
        "trunk[1].max_cps",
        "between 1 and 10000",
    );
    refused(
        "[media]\n",
        "[media]\nemergency_reserve_percent = 60\n",
        "emergency_reserve_percent",
        "media.emergency_reserve_percent",
        "between 0 and 50",
    );
    refused(
        "[media]\n",
        "[protect]\nunknown_source = \"ignore\"\n\n[media]\n",
        "unknown_source",
        "",
        "unknown variant",
    );
    refused(
        "[media]\n",
        "[protect]\nsilent = true\n\n[media]\n",
        "silent",
        "",
        "unknown field",
    );
}

#[test]
fn budgets_ranges_and_caps_of_protect_are_read_and_checked() {
    let l = parse(BASE, "t.toml").unwrap();
    let c = l.shield.limiter.clone().expect("on by default");
    assert_eq!(c.untrusted[0].per_second, 5.0);
    let text = BASE.replacen(
        "[media]\n",
        "[protect]\ninvite_per_second = 2\ntrusted = [\"203.0.113.0/24\"]\nban_after = 3\nmax_calls = 50\n\n[media]\n",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    let c = l.shield.limiter.clone().unwrap();
    assert_eq!(
        (c.untrusted[0].per_second, c.untrusted[0].burst),
        (2.0, 4.0)
    );
    assert_eq!(c.trusted_sources.len(), 1);
    assert_eq!(c.ban_after, 3);
    assert_eq!(l.shield.caps.calls, 50);
    let off = BASE.replacen("[media]\n", "[protect]\nenabled = false\n\n[media]\n", 1);
    assert!(parse(&off, "t.toml").unwrap().shield.limiter.is_none());
    refused(
        "[media]\n",
        "[protect]\ntrusted = [\"10.0.0.0/33\"]\n\n[media]\n",
        "trusted = ",
        "protect.trusted[0]",
        "10.0.0.0/33",
    );
    refused(
        "[media]\n",
        "[protect]\ninvite_per_second = -1\n\n[media]\n",
        "invite_per_second",
        "protect.invite_per_second",
        "positive",
    );
}
