//! The back-to-back user agent of sbc: calls, their two legs, SDP and media anchoring, REFER, session timers, CDRs. Sans-IO.
#![forbid(unsafe_code)]
