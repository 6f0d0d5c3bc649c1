//! End-to-end tests: the real `sbc` binary, driven with inputs and peers
//! nobody here wrote. One test binary with modules keeps link time down.

mod calls;
mod carrier_side;
mod check;
mod common;
mod daemon;
mod demo;
mod drill;
mod emergency;
mod faults;
mod http;
mod interop;
mod media;
mod net;
mod package;
mod peers;
mod phones;
mod preflight;
mod protect;
mod reload;
mod ringback;
mod run;
mod sip_check;
mod sip_interop;
