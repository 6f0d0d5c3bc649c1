//! Call-progress tones for the relay to play: G.711 µ-law and A-law
//! (ITU-T G.711) encoders and decoders, tone definitions (one or two
//! frequencies and an on/off cadence, ITU-T E.180 for the named ones), and
//! [`ToneSignal`], a tone precomputed once into one period of encoded
//! samples so that a 20 ms packet is a copy, not a computation.
//!
//! No I/O, no clock: the relay decides when a packet is due and asks for
//! the samples at a position (samples since the tone began).

use std::fmt;

/// Samples per second of G.711.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms packet.
pub const PACKET_SAMPLES: usize = 160;

/// Level of each frequency of a tone, dBm0 (ITU-T E.180 asks −10 to −20
/// for ringing tone; −19 each is ANSI T1.401's dual ringback, −16 keeps a
/// single-frequency tone audible over a carrier's compression).
pub const LEVEL_DBM0: f64 = -16.0;
/// Peak of a 0 dBm0 sine in 16-bit linear samples (µ-law and A-law put
/// the digital milliwatt about 3.1 dB below full scale).
const PEAK_0DBM0: f64 = 22_700.0;

/// Which G.711 law a party was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// µ-law (`PCMU`, static payload type 0).
    Pcmu,
    /// A-law (`PCMA`, static payload type 8).
    Pcma,
}

impl G711 {
    /// The law of an SDP encoding name (`PCMU`, `PCMA`, any case).
    pub fn from_encoding(name: &str) -> Option<G711> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(G711::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(G711::Pcma)
        } else {
            None
        }
    }

    /// The encoding of silence (linear 0).
    pub fn silence(self) -> u8 {
        self.encode(0)
    }

    /// One linear 16-bit sample encoded.
    pub fn encode(self, s: i16) -> u8 {
        match self {
            G711::Pcmu => ulaw_encode(s),
            G711::Pcma => alaw_encode(s),
        }
    }

    /// One encoded sample decoded to 16-bit linear.
    pub fn decode(self, b: u8) -> i16 {
        match self {
            G711::Pcmu => ulaw_decode(b),
            G711::Pcma => alaw_decode(b),
        }
    }
}

/// µ-law bias (G.711: the segment ends are offset by 33 in 14-bit units,
/// 132 in 16-bit ones).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law represents before the bias is added.
const ULAW_CLIP: i32 = 32_635;

/// G.711 µ-law of a 16-bit linear sample.
pub fn ulaw_encode(s: i16) -> u8 {
    let v = i32::from(s);
    let (sign, mag) = if v < 0 { (0x80, -v) } else { (0, v) };
    let x = mag.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment: where the highest bit of x lies, from bit 7 (segment 0)
    // to bit 14 (segment 7); x is at least 132, so bit 7 is the lowest.
    let seg = (31 - x.leading_zeros() as i32 - 7).clamp(0, 7);
    let mant = (x >> (seg + 3)) & 0x0f;
    !((sign | (seg << 4) | mant) as u8)
}

/// A µ-law sample to 16-bit linear.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let seg = i32::from((u >> 4) & 7);
    let mant = i32::from(u & 0x0f);
    let mag = (((mant << 3) + ULAW_BIAS) << seg) - ULAW_BIAS;
    // At most (15·8 + 132)·128 − 132 = 32,124: fits.
    if u & 0x80 != 0 {
        -mag as i16
    } else {
        mag as i16
    }
}

/// G.711 A-law of a 16-bit linear sample (13 bits significant).
pub fn alaw_encode(s: i16) -> u8 {
    let v = i32::from(s) >> 3;
    // Even bits are inverted on the line (0x55); the sign bit set means
    // positive.
    let (mask, mag): (u8, i32) = if v >= 0 { (0xd5, v) } else { (0x55, -v - 1) };
    // Segment ends, 13-bit magnitudes: 31, 63, 127 … 4095.
    let seg = (0..8).find(|&k| mag <= (0x1f << k) | ((1 << k) - 1));
    let Some(seg) = seg else {
        return 0x7f ^ mask;
    };
    let mant = if seg < 2 {
        (mag >> 1) & 0x0f
    } else {
        (mag >> seg) & 0x0f
    };
    (((seg << 4) | mant) as u8) ^ mask
}

/// An A-law sample to 16-bit linear (the middle of its step).
pub fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = (a >> 4) & 7;
    let mut t = i32::from(a & 0x0f) << 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    // At most (15·16 + 264)·64 = 32,256: fits.
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// A tone as configured: one or two frequencies and a cadence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tone {
    /// Frequencies in Hz (one or two, each 1–3999: below half of 8 kHz),
    /// played together at [`LEVEL_DBM0`] each.
    pub freqs: Vec<u16>,
    /// On and off periods in milliseconds, alternating and starting with
    /// an on period (`[1000, 4000]`: 1 s tone, 4 s silence); an even
    /// number of entries, each 1–60000. Empty: the tone never pauses.
    pub cadence_ms: Vec<u32>,
}

/// Why a tone definition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToneError {
    /// Not one or two frequencies.
    FrequencyCount(usize),
    /// A frequency of 0 or at least 4000 Hz (the Nyquist limit of 8 kHz).
    Frequency(u16),
    /// An odd number of cadence entries (every on period needs its off).
    OddCadence(usize),
    /// A period of 0 or more than a minute.
    Period(u32),
}

impl fmt::Display for ToneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToneError::FrequencyCount(n) => write!(f, "{n} frequencies: a tone has one or two"),
            ToneError::Frequency(hz) => {
                write!(
                    f,
                    "{hz} Hz: frequencies must be 1–3999 Hz (G.711 samples at 8 kHz)"
                )
            }
            ToneError::OddCadence(n) => write!(
                f,
                "{n} cadence entries: on and off periods alternate, so their number is even"
            ),
            ToneError::Period(ms) => write!(f, "a period of {ms} ms: each must be 1–60000 ms"),
        }
    }
}

impl std::error::Error for ToneError {}

/// The named ringing tones (ITU-T E.180 and its supplement), in the order
/// [`Tone::named`] knows them.
pub const TONE_NAMES: [&str; 5] = ["us", "uk", "de", "eu", "fr"];

impl Tone {
    /// A named ringing tone: `us` (440 + 480 Hz, 2 s on 4 s off), `uk`
    /// (400 + 450 Hz, 0.4 on 0.2 off 0.4 on 2 off), `de` and `eu` (425 Hz,
    /// 1 s on 4 s off; the CEPT tone), `fr` (440 Hz, 1.5 s on 3.5 s off).
    pub fn named(name: &str) -> Option<Tone> {
        let (freqs, cadence): (&[u16], &[u32]) = match name {
            "us" => (&[440, 480], &[2000, 4000]),
            "uk" => (&[400, 450], &[400, 200, 400, 2000]),
            "de" | "eu" => (&[425], &[1000, 4000]),
            "fr" => (&[440], &[1500, 3500]),
            _ => return None,
        };
        Some(Tone {
            freqs: freqs.to_vec(),
            cadence_ms: cadence.to_vec(),
        })
    }

    /// Checks the definition (what [`ToneSignal::new`] needs).
    pub fn check(&self) -> Result<(), ToneError> {
        if !(1..=2).contains(&self.freqs.len()) {
            return Err(ToneError::FrequencyCount(self.freqs.len()));
        }
        if let Some(&f) = self.freqs.iter().find(|&&f| f == 0 || f >= 4000) {
            return Err(ToneError::Frequency(f));
        }
        if !self.cadence_ms.len().is_multiple_of(2) {
            return Err(ToneError::OddCadence(self.cadence_ms.len()));
        }
        if let Some(&p) = self.cadence_ms.iter().find(|&&p| p == 0 || p > 60_000) {
            return Err(ToneError::Period(p));
        }
        Ok(())
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A tone ready to play in one law: one period of its encoded samples
/// (8000 / gcd(8000, frequencies) samples: 320 for 425 Hz, 200 for
/// 440 + 480 Hz, 8000 at most) and its cadence in samples.
#[derive(Clone, PartialEq, Eq)]
pub struct ToneSignal {
    law: G711,
    /// One period of the tone, encoded.
    period: Vec<u8>,
    /// On/off periods in samples (empty: always on).
    cadence: Vec<u64>,
    /// Their sum.
    cycle: u64,
    silence: u8,
}

impl fmt::Debug for ToneSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToneSignal")
            .field("law", &self.law)
            .field("period", &self.period.len())
            .field("cadence", &self.cadence)
            .finish()
    }
}

impl ToneSignal {
    /// Precomputes `tone` in `law`; refused when the definition is not
    /// one [`Tone::check`] accepts.
    pub fn new(tone: &Tone, law: G711) -> Result<ToneSignal, ToneError> {
        tone.check()?;
        let g = tone
            .freqs
            .iter()
            .fold(SAMPLE_RATE, |g, &f| gcd(g, u32::from(f)));
        // g ≥ 1 (every frequency is at least 1 Hz), so the period is at
        // most 8000 samples and the sum of sines repeats exactly after it.
        let len = (SAMPLE_RATE / g.max(1)) as usize;
        let amp = PEAK_0DBM0 * 10f64.powf(LEVEL_DBM0 / 20.0);
        let period = (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(SAMPLE_RATE);
                let v: f64 = tone
                    .freqs
                    .iter()
                    .map(|&f| amp * (2.0 * std::f64::consts::PI * f64::from(f) * t).sin())
                    .sum();
                // At most 2 · 3,600: within i16.
                law.encode(v.round() as i16)
            })
            .collect();
        let cadence: Vec<u64> = tone
            .cadence_ms
            .iter()
            .map(|&ms| u64::from(ms) * u64::from(SAMPLE_RATE) / 1000)
            .collect();
        let cycle = cadence.iter().sum();
        Ok(ToneSignal {
            law,
            period,
            cadence,
            cycle,
            silence: law.silence(),
        })
    }

    /// The law the samples are in.
    pub fn law(&self) -> G711 {
        self.law
    }

    /// True when sample `pos` (since the tone began) falls in an on period.
    pub fn is_on(&self, pos: u64) -> bool {
        if self.cycle == 0 {
            return true;
        }
        let mut at = pos % self.cycle;
        for (i, &len) in self.cadence.iter().enumerate() {
            if at < len {
                return i % 2 == 0;
            }
            at -= len;
        }
        false
    }

    /// Writes the samples from position `pos` into `out` (one per octet):
    /// the tone in on periods, silence in off periods.
    pub fn fill(&self, pos: u64, out: &mut [u8]) {
        let n = self.period.len() as u64;
        for (k, o) in out.iter_mut().enumerate() {
            let p = pos + k as u64;
            *o = if self.is_on(p) {
                // n ≥ 1: the period has at least one sample.
                self.period[(p % n.max(1)) as usize]
            } else {
                self.silence
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        assert_eq!(ulaw_encode(0), 0xff, "µ-law silence");
        assert_eq!(ulaw_encode(-1), 0x7f);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(ulaw_decode(0xff), 0);
        // Segment 3, mantissa 5: ((5 << 3) + 132) << 3 − 132 = 1244.
        assert_eq!(ulaw_decode(!0x35), 1244);
        assert_eq!(ulaw_encode(1244), !0x35);
        assert_eq!(alaw_encode(0), 0xd5, "A-law silence");
        assert_eq!(alaw_encode(-8), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0xaa), 32_256);
        assert_eq!(alaw_decode(0x2a), -32_256);
        // Segment 4, mantissa 9: ((9 << 4) + 264) << 3 = 3264.
        assert_eq!(alaw_decode(0x49 ^ 0xd5), 3264);
        assert_eq!(alaw_encode(3264), 0x49 ^ 0xd5);
    }

    /// The quantisation step of the segment a decoded value lies in.
    fn step(law: G711, code: u8) -> i32 {
        match law {
            G711::Pcmu => 8 << ((!code >> 4) & 7),
            G711::Pcma => match ((code ^ 0x55) >> 4) & 7 {
                0 | 1 => 16,
                s => 16 << (s - 1),
            },
        }
    }

    #[test]
    fn every_sample_decodes_back_within_one_step() {
        for law in [G711::Pcmu, G711::Pcma] {
            for s in i16::MIN..=i16::MAX {
                let code = law.encode(s);
                let back = i32::from(law.decode(code));
                let err = (back - i32::from(s)).abs();
                // Beyond the largest code the error is the clipping.
                let clip = i32::from(s).abs() > 32_124;
                assert!(
                    clip || err <= step(law, code),
                    "{law:?} {s} → {code:#04x} → {back}: off by {err}"
                );
            }
        }
    }

    #[test]
    fn every_code_survives_decode_and_encode() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
            // µ-law has two zeros (0x7f, 0xff): −0 encodes as +0.
            if code != 0x7f {
                assert_eq!(ulaw_encode(ulaw_decode(code)), code, "µ-law {code:#04x}");
            }
        }
    }

    /// Zero crossings per second of a decoded stretch of samples.
    fn crossings_per_second(law: G711, samples: &[u8]) -> f64 {
        let lin: Vec<i32> = samples.iter().map(|&b| i32::from(law.decode(b))).collect();
        let n = lin.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        n as f64 * f64::from(SAMPLE_RATE) / lin.len() as f64
    }

    fn one_second(tone: &Tone, law: G711) -> Vec<u8> {
        let continuous = Tone {
            cadence_ms: Vec::new(),
            ..tone.clone()
        };
        let s = ToneSignal::new(&continuous, law).unwrap();
        let mut out = vec![0u8; SAMPLE_RATE as usize];
        s.fill(12_345, &mut out);
        out
    }

    #[test]
    fn a_tone_has_its_frequency_by_zero_crossings() {
        for (name, hz) in [("de", 425.0), ("fr", 440.0)] {
            let t = Tone::named(name).unwrap();
            for law in [G711::Pcmu, G711::Pcma] {
                let z = crossings_per_second(law, &one_second(&t, law));
                assert!(
                    (z - 2.0 * hz).abs() <= 4.0,
                    "{name} {law:?}: {z} crossings/s"
                );
            }
        }
        // Two equal sines: sin(a) + sin(b) = 2 sin((a+b)/2) cos((a−b)/2),
        // whose sign changes 2·(f1+f2)/2 + 2·(f2−f1)/2 = 2·f2 times a second.
        for (name, hz) in [("us", 480.0), ("uk", 450.0)] {
            let t = Tone::named(name).unwrap();
            let z = crossings_per_second(G711::Pcma, &one_second(&t, G711::Pcma));
            assert!((z - 2.0 * hz).abs() <= 6.0, "{name}: {z} crossings/s");
        }
    }

    #[test]
    fn level_is_about_minus_16_dbm0_per_frequency() {
        let t = Tone::named("de").unwrap();
        let s = one_second(&t, G711::Pcmu);
        let peak = s
            .iter()
            .map(|&b| i32::from(ulaw_decode(b)).abs())
            .max()
            .unwrap();
        // 22,700 · 10^(−16/20) ≈ 3,598, within a µ-law step (128 there).
        assert!((3_450..=3_750).contains(&peak), "peak {peak}");
    }

    #[test]
    fn cadence_switches_between_tone_and_silence() {
        let uk = ToneSignal::new(&Tone::named("uk").unwrap(), G711::Pcma).unwrap();
        // 0.4 s on, 0.2 off, 0.4 on, 2.0 off: a 3 s cycle of 24,000 samples.
        let at = |ms: u64| ms * 8;
        for (ms, on) in [
            (0, true),
            (399, true),
            (400, false),
            (599, false),
            (600, true),
            (999, true),
            (1000, false),
            (2999, false),
            (3000, true),
            (3000 * 7 + 650, true),
        ] {
            assert_eq!(uk.is_on(at(ms)), on, "{ms} ms");
        }
        let mut packet = [0u8; PACKET_SAMPLES];
        uk.fill(at(420), &mut packet);
        assert!(packet.iter().all(|&b| b == 0xd5), "off: A-law silence");
        uk.fill(at(20), &mut packet);
        assert!(
            packet.iter().filter(|&&b| b != 0xd5).count() > 140,
            "on: tone"
        );
        // A packet across the end of an on period: tone, then silence.
        uk.fill(at(390), &mut packet);
        assert!(packet[..80].iter().any(|&b| b != 0xd5));
        assert!(packet[80..].iter().all(|&b| b == 0xd5));
        let always = ToneSignal::new(
            &Tone {
                freqs: vec![1000],
                cadence_ms: vec![],
            },
            G711::Pcmu,
        )
        .unwrap();
        assert!(always.is_on(u64::MAX - 3));
    }

    #[test]
    fn named_tones_and_bad_definitions() {
        for n in TONE_NAMES {
            let t = Tone::named(n).unwrap();
            t.check().unwrap();
            ToneSignal::new(&t, G711::Pcmu).unwrap();
        }
        assert!(Tone::named("xx").is_none());
        let bad = |freqs: &[u16], cadence: &[u32]| {
            Tone {
                freqs: freqs.to_vec(),
                cadence_ms: cadence.to_vec(),
            }
            .check()
            .unwrap_err()
        };
        assert_eq!(bad(&[], &[]), ToneError::FrequencyCount(0));
        assert_eq!(bad(&[1, 2, 3], &[]), ToneError::FrequencyCount(3));
        assert_eq!(bad(&[4000], &[]), ToneError::Frequency(4000));
        assert_eq!(bad(&[0, 400], &[]), ToneError::Frequency(0));
        assert_eq!(bad(&[425], &[1000]), ToneError::OddCadence(1));
        assert_eq!(bad(&[425], &[1000, 0]), ToneError::Period(0));
        assert_eq!(bad(&[425], &[60_001, 10]), ToneError::Period(60_001));
        // An awkward frequency gives the longest period, 8000 samples.
        let odd = ToneSignal::new(
            &Tone {
                freqs: vec![401, 3999],
                cadence_ms: vec![],
            },
            G711::Pcma,
        )
        .unwrap();
        assert_eq!(odd.period.len(), 8000);
    }
}
