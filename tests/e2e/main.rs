//! End-to-end tests: the real `sbc` binary, driven with inputs and peers
//! nobody here wrote. One test binary with modules keeps link time down.

mod calls;
mod common;
mod daemon;
mod demo;
mod media;
mod net;
mod run;
mod sip_check;
