//! What a trunk's peers speak beyond the basic call: reliable provisional
//! responses (RFC 3262), UPDATE (RFC 3311), the provisional timeout of
//! proxied INVITEs (Timer C, RFC 3261 §16.6) and session timers the SBC
//! originates (RFC 4028).

use std::time::Duration;

/// Reliable provisional responses (`100rel`, RFC 3262) on a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel100 {
    /// Not used: never in our Supported; a caller's `Require: 100rel` is
    /// refused with 420 (Unsupported: 100rel). Microsoft's trunks.
    Off,
    /// In our Supported toward the trunk (its reliable 18x are PRACKed);
    /// our 18x toward a caller of the trunk are reliable when it requires
    /// it. Carriers, gateways and phones.
    Supported,
    /// As `Supported`, and our INVITEs carry `Require: 100rel`; our 18x
    /// toward its callers are reliable whenever they support it.
    Required,
}

/// Who refreshes a session the SBC times (RFC 4028 §7, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The SBC refreshes (re-INVITE, or UPDATE where the trunk takes it)
    /// at half the interval; a refresh that fails with 408 or 481, or gets
    /// no answer, ends the call.
    Sbc,
    /// The peer refreshes; without a refresh within the interval the call
    /// ends (BYE both sides).
    Peer,
}

/// A session timer the SBC asks for on a trunk's legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The interval asked for (`Session-Expires`), seconds.
    pub expires: u32,
    /// Who should refresh.
    pub refresher: Refresher,
}

/// The interop settings of a trunk ([`crate::TrunkSpec::interop`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interop {
    /// Reliable provisional responses.
    pub rel100: Rel100,
    /// The peers take UPDATE (an SDP change toward them goes as UPDATE;
    /// otherwise as re-INVITE). Off toward Microsoft, which does not.
    pub update: bool,
    /// Timer C: an attempt that got a provisional response and then
    /// nothing for this long is cancelled and counts as a timeout.
    pub provisional_timeout: Duration,
    /// Session timer the SBC originates on this trunk's legs; `None`:
    /// only what the peers ask for.
    pub session_timer: Option<SessionTimer>,
    /// The smallest session interval accepted from the peers (`Min-SE`,
    /// RFC 4028 §5: at least 90 s); a smaller one is answered 422.
    pub min_se: u32,
}

/// RFC 4028 §4: no interval below 90 s.
pub const MIN_SE_FLOOR: u32 = 90;

impl Interop {
    /// The defaults: Microsoft's trunks without 100rel and UPDATE, every
    /// other trunk with both; Timer C 180 s; no session timer of ours;
    /// `Min-SE` 90 s.
    pub fn for_kind(microsoft: bool) -> Interop {
        Interop {
            rel100: if microsoft {
                Rel100::Off
            } else {
                Rel100::Supported
            },
            update: !microsoft,
            provisional_timeout: Duration::from_secs(180),
            session_timer: None,
            min_se: MIN_SE_FLOOR,
        }
    }
}

impl Interop {
    /// Our `Allow` toward the trunk: PRACK and UPDATE where its peers
    /// take them.
    pub fn allow(&self) -> &'static str {
        match (self.rel100 != Rel100::Off, self.update) {
            (true, true) => "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, PRACK, UPDATE",
            (true, false) => "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, PRACK",
            (false, true) => "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, UPDATE",
            (false, false) => crate::ALLOW,
        }
    }

    /// The `Supported` of our INVITEs toward the trunk (`None`: the header
    /// is left out, as toward Microsoft by default).
    pub fn supported(&self) -> Option<&'static str> {
        match (self.rel100 != Rel100::Off, self.session_timer.is_some()) {
            (true, true) => Some("100rel, timer"),
            (true, false) => Some("100rel"),
            (false, true) => Some("timer"),
            (false, false) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_gets_neither_prack_nor_update() {
        let ms = Interop::for_kind(true);
        assert_eq!(ms.allow(), crate::ALLOW);
        assert_eq!(ms.supported(), None);
        let carrier = Interop::for_kind(false);
        assert!(carrier.allow().ends_with("PRACK, UPDATE"));
        assert_eq!(carrier.supported(), Some("100rel"));
        let timed = Interop {
            session_timer: Some(SessionTimer {
                expires: 1800,
                refresher: Refresher::Sbc,
            }),
            ..ms
        };
        assert_eq!(timed.supported(), Some("timer"));
    }
}
