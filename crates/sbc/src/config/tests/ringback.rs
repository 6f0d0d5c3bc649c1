//! `ringback`, `ringback_tone` and `[media.tones]`.

use super::*;

fn with(from: &str, to: &str) -> Loaded {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    parse(&BASE.replacen(from, to, 1), "t.toml").unwrap()
}

const CARRIER_IFACE: &str = "media_interface = \"carrier\"\n";

#[test]
fn ringback_is_pass_unless_a_trunk_says_local_and_takes_the_default_tone() {
    let l = parse(BASE, "t.toml").unwrap();
    assert_eq!(trunk(&l, "carrier").ringback, trunk::Ringback::Pass);
    let l = with(
        CARRIER_IFACE,
        "media_interface = \"carrier\"\nringback = \"local\"\n",
    );
    assert_eq!(
        trunk(&l, "carrier").ringback,
        trunk::Ringback::Local {
            name: "eu".into(),
            freqs: vec![425],
            cadence_ms: vec![1000, 4000],
        },
        "[media] ringback_tone defaults to the CEPT tone"
    );
    assert_eq!(trunk(&l, "teams").ringback, trunk::Ringback::Pass);
    let l = with(
        CARRIER_IFACE,
        "media_interface = \"carrier\"\nringback = \"local\"\nringback_tone = \"uk\"\n",
    );
    assert_eq!(
        trunk(&l, "carrier").ringback,
        trunk::Ringback::Local {
            name: "uk".into(),
            freqs: vec![400, 450],
            cadence_ms: vec![400, 200, 400, 2000],
        }
    );
    // `pass` keeps it off, whatever the tone.
    let l = with(
        CARRIER_IFACE,
        "media_interface = \"carrier\"\nringback = \"pass\"\nringback_tone = \"us\"\n",
    );
    assert_eq!(trunk(&l, "carrier").ringback, trunk::Ringback::Pass);
}

#[test]
fn tones_of_ones_own_and_a_default_in_media() {
    let media = "interfaces = [\"carrier/127.0.0.1\", \"microsoft/127.0.0.1\"]\n";
    let text = BASE
        .replacen(
            media,
            &format!(
                "{media}ringback_tone = \"office\"\n\n[media.tones.office]\nfreqs = [440, 350]\ncadence_ms = [1000, 2000]\n\n[media.tones.fr]\nfreqs = [440]\n"
            ),
            1,
        )
        .replacen(CARRIER_IFACE, "media_interface = \"carrier\"\nringback = \"local\"\n", 1)
        .replacen(
            "media_interface = \"microsoft\"\n",
            "media_interface = \"microsoft\"\nringback = \"local\"\nringback_tone = \"fr\"\n",
            1,
        );
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(
        trunk(&l, "carrier").ringback,
        trunk::Ringback::Local {
            name: "office".into(),
            freqs: vec![440, 350],
            cadence_ms: vec![1000, 2000],
        }
    );
    // A [media.tones] entry with a built-in name replaces it (continuous here).
    assert_eq!(
        trunk(&l, "teams").ringback,
        trunk::Ringback::Local {
            name: "fr".into(),
            freqs: vec![440],
            cadence_ms: vec![],
        }
    );
}

#[test]
fn unknown_tones_and_bad_ones_are_refused_naming_the_field() {
    refused(
        CARRIER_IFACE,
        "media_interface = \"carrier\"\nringback = \"local\"\nringback_tone = \"jp\"\n",
        "ringback_tone",
        "trunk[0].ringback_tone",
        "no tone named \"jp\" (tones: de, eu, fr, uk, us; more in [media.tones])",
    );
    let media = "interfaces = [\"carrier/127.0.0.1\", \"microsoft/127.0.0.1\"]\n";
    refused(
        media,
        &format!("{media}ringback_tone = \"xx\"\n"),
        "ringback_tone",
        "media.ringback_tone",
        "no tone named \"xx\"",
    );
    refused(
        media,
        &format!("{media}\n[media.tones.shrill]\nfreqs = [4200]\n"),
        "[media.tones.shrill]",
        "media.tones.shrill.freqs",
        "4200 Hz: frequencies must be 1–3999 Hz",
    );
    refused(
        media,
        &format!("{media}\n[media.tones.three]\nfreqs = [350, 440, 480]\n"),
        "[media.tones.three]",
        "media.tones.three.freqs",
        "3 frequencies: a tone has one or two",
    );
    refused(
        media,
        &format!("{media}\n[media.tones.odd]\nfreqs = [425]\ncadence_ms = [1000, 4000, 500]\n"),
        "[media.tones.odd]",
        "media.tones.odd.cadence_ms",
        "3 cadence entries",
    );
    refused(
        media,
        &format!("{media}\n[media.tones.zero]\nfreqs = [425]\ncadence_ms = [1000, 0]\n"),
        "[media.tones.zero]",
        "media.tones.zero.cadence_ms",
        "a period of 0 ms",
    );
    refused(
        CARRIER_IFACE,
        "media_interface = \"carrier\"\nringback = \"loud\"\n",
        "ringback = \"loud\"",
        "",
        "unknown variant `loud`",
    );
}
