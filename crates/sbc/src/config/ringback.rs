//! Local ringback: the tones of `[media]` (`ringback_tone`, `[media.tones.NAME]`)
//! and a trunk's `ringback` / `ringback_tone`.

use std::collections::BTreeMap;

use media::tone::{Tone, ToneError, TONE_NAMES};
use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::schema::{MediaSection, RingbackName, TrunkSection};

/// The tones a trunk may name: the built-in ones and `[media.tones]`
/// (which may replace a built-in one), and the default.
#[derive(Debug, Clone)]
pub(crate) struct Tones {
    table: BTreeMap<String, Tone>,
    default: String,
}

impl Tones {
    fn get(&self, name: &str) -> Option<&Tone> {
        self.table.get(name)
    }

    fn names(&self) -> String {
        self.table.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Checks `[media] ringback_tone` and `[media.tones]`.
pub(super) fn check_tones(ctx: &Ctx<'_>, m: &MediaSection) -> Result<Tones, ConfigError> {
    let mut table: BTreeMap<String, Tone> = TONE_NAMES
        .iter()
        .filter_map(|n| Tone::named(n).map(|t| ((*n).to_owned(), t)))
        .collect();
    for (name, t) in &m.tones {
        let field = |f: &str| format!("media.tones.{name}.{f}");
        if !name_ok(name) {
            return Err(ctx.err(
                Some(&t.span()),
                &format!("media.tones.{name}"),
                "a tone name has 1–32 letters, digits, '-' or '_'",
            ));
        }
        let tone = Tone {
            freqs: t.get_ref().freqs.clone(),
            cadence_ms: t.get_ref().cadence_ms.clone(),
        };
        if let Err(e) = tone.check() {
            let f = match e {
                ToneError::OddCadence(_) | ToneError::Period(_) => field("cadence_ms"),
                _ => field("freqs"),
            };
            return Err(ctx.err(Some(&t.span()), &f, e.to_string()));
        }
        table.insert(name.clone(), tone);
    }
    let tones = Tones {
        table,
        default: m.ringback_tone.get_ref().clone(),
    };
    if tones.get(&tones.default).is_none() {
        return Err(ctx.err(
            Some(&m.ringback_tone.span()),
            "media.ringback_tone",
            format!(
                "no tone named {:?} (tones: {})",
                tones.default,
                tones.names()
            ),
        ));
    }
    Ok(tones)
}

/// A trunk's ringback: `pass` unless `ringback = "local"`, which plays its
/// `ringback_tone` (or the default).
pub(super) fn trunk_ringback(
    ctx: &Ctx<'_>,
    i: usize,
    t: &TrunkSection,
    tones: &Tones,
) -> Result<trunk::Ringback, ConfigError> {
    let name = match &t.ringback_tone {
        Some(n) => {
            if tones.get(n.get_ref()).is_none() {
                return Err(ctx.err(
                    Some(&n.span()),
                    &format!("trunk[{i}].ringback_tone"),
                    format!(
                        "no tone named {:?} (tones: {}; more in [media.tones])",
                        n.get_ref(),
                        tones.names()
                    ),
                ));
            }
            n.get_ref().clone()
        }
        None => tones.default.clone(),
    };
    match t.ringback.as_ref().map(Spanned::get_ref) {
        None | Some(RingbackName::Pass) => Ok(trunk::Ringback::Pass),
        Some(RingbackName::Local) => {
            let tone = tones.get(&name).cloned().unwrap_or_else(|| Tone {
                // Checked above (a trunk's) or in check_tones (the default).
                freqs: vec![425],
                cadence_ms: vec![1000, 4000],
            });
            Ok(trunk::Ringback::Local {
                name,
                freqs: tone.freqs,
                cadence_ms: tone.cadence_ms,
            })
        }
    }
}
