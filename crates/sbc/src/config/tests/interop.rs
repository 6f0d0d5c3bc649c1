//! A trunk's `dtmf` and `t38` (issue 15, carrier and gateway interop).

use super::*;

#[test]
fn dtmf_and_t38_take_the_defaults_of_the_trunks_kind() {
    let l = parse(BASE, "t.toml").unwrap();
    assert_eq!(trunk(&l, "carrier").dtmf, trunk::DtmfMode::Rfc4733);
    assert!(trunk(&l, "carrier").t38);
    assert!(!trunk(&l, "teams").t38);
    assert!(!trunk(&l, "acs").t38);
    let text = BASE.replacen(
        "media_interface = \"carrier\"\n",
        "media_interface = \"carrier\"\ndtmf = \"info\"\nt38 = false\n",
        1,
    );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(trunk(&l, "carrier").dtmf, trunk::DtmfMode::Info);
    assert!(!trunk(&l, "carrier").t38);
    // A carrier on SRTP has no T.38 unless it says so (and it cannot).
    let srtp = BASE.replacen(
        "media_interface = \"carrier\"\n",
        "media_interface = \"carrier\"\nmedia = \"srtp\"\n",
        1,
    );
    assert!(!trunk(&parse(&srtp, "t.toml").unwrap(), "carrier").t38);
}

#[test]
fn dtmf_and_t38_are_refused_where_microsoft_cannot_take_them() {
    refused(
        "tls = \"teams\"\n",
        "tls = \"teams\"\ndtmf = \"info\"\n",
        "dtmf = ",
        "trunk[1].dtmf",
        "RFC 4733 telephone-events only",
    );
    refused(
        "tls = \"acs\"\n",
        "tls = \"acs\"\nt38 = true\n",
        "t38 = ",
        "trunk[2].t38",
        "cannot be carried on an SRTP leg",
    );
    refused(
        "media_interface = \"carrier\"\n",
        "media_interface = \"carrier\"\nmedia = \"srtp\"\nt38 = true\n",
        "t38 = ",
        "trunk[0].t38",
        "SRTP leg",
    );
    refused(
        "media_interface = \"carrier\"\n",
        "media_interface = \"carrier\"\ndtmf = \"inband\"\n",
        "dtmf = ",
        "",
        "unknown variant",
    );
}
