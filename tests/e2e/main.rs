//! End-to-end tests of the real `sbc` binary.

mod sip_check;
